"""Errors of the group runtime.

    MosaikError
    └── GroupError                base of the errors a group handle raises
        └── CommandsNotApplied    carries ``commands``: what the call did not (knowingly) apply
            ├── Offline           no leader took the commands in time (``forward_timeout``), or
            │                     a strong query got no confirmation (``query_timeout``);
            │                     ``maybe_applied`` is True when a leader may have taken them
            │                     but its answer was lost: the outcome is then unknown
            ├── GroupTerminated   the handle or the group closed first (or failed while
            │                     joining)
            ├── GroupStopped      the group stopped on this node (``reason``: storage_full,
            │                     ...) and retries by itself; the handle works again once it
            │                     recovered. ``maybe_applied`` as for ``Offline``: commands
            │                     already appended may still commit through the other members
            └── Encoding          a command is not an instance of the machine's command type
                                  (the caller's fault; nothing was sent)

The Raft core's errors (``node.groups.raft``: ``CorruptStorage`` naming the file, ...) come
through ``join`` unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Self

from node.errors import MosaikError


class GroupError(MosaikError):
    """Base of every error a group handle raises."""


class CommandsNotApplied(GroupError):
    """The commands in ``commands`` were not applied (see ``Offline.maybe_applied``)."""

    def __init__(self, message: str, commands: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.commands = tuple(commands)

    def with_commands(self, commands: Sequence[Any]) -> Self:
        """The same error (type, message, attributes) about ``commands``."""
        error = copy.copy(self)
        error.commands = tuple(commands)
        return error


class Offline(CommandsNotApplied):
    """No leader could take the commands (or confirm a strong read) in time."""

    def __init__(
        self, message: str, commands: Sequence[Any] = (), *, maybe_applied: bool = False
    ) -> None:
        super().__init__(message, commands)
        self.maybe_applied = maybe_applied


class GroupTerminated(CommandsNotApplied):
    """The group handle (or the whole group on this node) closed before the call completed."""


class Encoding(CommandsNotApplied):
    """A command that does not encode as the state machine's ``command_type``."""


class GroupStopped(CommandsNotApplied):
    """The group stopped on this node (its storage or driver failed) and is retrying; ``reason``
    is the bounded label (``storage_full``, ``storage_corrupt``, ``storage_error``,
    ``internal``). Commands may have been appended before the stop when ``maybe_applied``."""

    def __init__(
        self,
        message: str,
        commands: Sequence[Any] = (),
        *,
        reason: str = "internal",
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(message, commands)
        self.reason = reason
        self.maybe_applied = maybe_applied
