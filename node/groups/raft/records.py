"""The durable records of Raft: log entries, hard state, configurations and snapshots.

All are frozen msgspec Structs, so they are hashable, cheap to copy by reference and travel in
messages and storage with the project codec.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Annotated

import msgspec

from node.primitives.keys import PeerId

Index = Annotated[int, msgspec.Meta(ge=0)]
"""A log position; the first entry is 1, and 0 means "before the log"."""

Term = Annotated[int, msgspec.Meta(ge=0)]

ENTRY_OVERHEAD = 16
"""Bytes counted per entry on top of its data when batching by size."""


class EntryKind(enum.IntEnum):
    COMMAND = 0
    """Application data for the state machine."""
    CONFIG = 1
    """A ``Membership``: the whole new configuration, in effect as soon as it is appended."""
    NOOP = 2
    """Appended by each new leader so that it can commit entries of earlier terms."""


class Entry(msgspec.Struct, frozen=True, array_like=True):
    index: Index
    term: Term
    kind: EntryKind = EntryKind.COMMAND
    data: bytes = b""

    @property
    def size(self) -> int:
        return len(self.data) + ENTRY_OVERHEAD


class HardState(msgspec.Struct, frozen=True, array_like=True):
    """What a node must persist before sending any message that depends on it."""

    term: Term = 0
    vote: PeerId | None = None
    commit: Index = 0


class Membership(msgspec.Struct, frozen=True, array_like=True):
    """A configuration: voters decide elections and commits, learners only receive the log.

    Both are kept sorted so the same configuration always encodes to the same bytes.
    """

    voters: tuple[PeerId, ...] = ()
    learners: tuple[PeerId, ...] = ()

    @classmethod
    def of(cls, voters: Iterable[PeerId], learners: Iterable[PeerId] = ()) -> Membership:
        voter_set = set(voters)
        return cls(tuple(sorted(voter_set)), tuple(sorted(set(learners) - voter_set)))

    def __contains__(self, peer: object) -> bool:
        return peer in self.voters or peer in self.learners

    @property
    def members(self) -> tuple[PeerId, ...]:
        return self.voters + self.learners

    @property
    def quorum(self) -> int:
        return len(self.voters) // 2 + 1


class ConfChangeKind(enum.IntEnum):
    ADD_LEARNER = 0
    """Add a non-voting member that receives the log."""
    ADD_VOTER = 1
    """Add a voter, or promote a learner to voter."""
    REMOVE = 2
    """Remove a voter or a learner."""


class ConfChange(msgspec.Struct, frozen=True, array_like=True):
    """A single-server change (thesis 4.1): one member added, promoted or removed at a time."""

    kind: ConfChangeKind
    node: PeerId

    def apply_to(self, current: Membership) -> Membership:
        """The configuration after this change; ``ValueError`` if it does not apply."""
        node = self.node
        if self.kind is ConfChangeKind.ADD_LEARNER:
            if node in current:
                raise ValueError(f"{node.short()} is already a member")
            return Membership.of(current.voters, (*current.learners, node))
        if self.kind is ConfChangeKind.ADD_VOTER:
            if node in current.voters:
                raise ValueError(f"{node.short()} is already a voter")
            learners = tuple(p for p in current.learners if p != node)
            return Membership.of((*current.voters, node), learners)
        if node not in current:
            raise ValueError(f"{node.short()} is not a member")
        voters = tuple(p for p in current.voters if p != node)
        if not voters:
            raise ValueError("cannot remove the last voter")
        return Membership.of(voters, (p for p in current.learners if p != node))


class SnapshotMeta(msgspec.Struct, frozen=True, array_like=True):
    """Where a snapshot sits in the log and the configuration in effect at that index."""

    index: Index = 0
    term: Term = 0
    membership: Membership = Membership()


class Snapshot(msgspec.Struct, frozen=True, array_like=True):
    """The state machine's state after applying the log up to ``meta.index``.

    ``data`` is opaque to Raft: the shell produces it from its state machine and restores from
    it. A fresh log has the empty snapshot (index 0).
    """

    meta: SnapshotMeta = SnapshotMeta()
    data: bytes = b""

    @property
    def index(self) -> int:
        return self.meta.index

    @property
    def term(self) -> int:
        return self.meta.term


EMPTY_SNAPSHOT = Snapshot()
