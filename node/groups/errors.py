"""Errors of the group runtime.

    MosaikError
    └── GroupError                base of the errors a group handle raises
        └── CommandsNotApplied    carries ``commands``: what the call did not (knowingly) apply
            ├── Offline           no leader took the commands in time (``forward_timeout``), or
            │                     a strong query got no confirmation (``query_timeout``);
            │                     ``maybe_applied`` is True when a leader may have taken them
            │                     but its answer was lost: the outcome is then unknown
            ├── GroupTerminated   the handle or the group closed (or failed) first
            └── Encoding          a command is not an instance of the machine's command type
                                  (the caller's fault; nothing was sent)

The Raft core's errors (``node.groups.raft``: ``CorruptStorage`` naming the file, ...) come
through ``join`` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node.errors import MosaikError


class GroupError(MosaikError):
    """Base of every error a group handle raises."""


class CommandsNotApplied(GroupError):
    """The commands in ``commands`` were not applied (see ``Offline.maybe_applied``)."""

    def __init__(self, message: str, commands: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.commands = tuple(commands)


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
