"""Errors of the Raft core and its storage.

    MosaikError
    └── RaftError                 base of every Raft error
        ├── NotLeader             a proposal, read or transfer on a node that is not the leader;
        │                         carries the leader it knows of (or None), for forwarding
        ├── ProposalDropped       the leader cannot take the proposal now (a leadership transfer
        │                         or an uncommitted configuration change is in progress)
        ├── InvalidConfChange     the change is not valid against the current configuration
        ├── UsageError            the core's contract was broken by its caller (our fault):
        │                         ready() twice without advance(), advance() of a stale Ready
        └── StorageError          the durable store failed; names the file when there is one
            ├── Compacted         the requested index is below the compaction point
            ├── Unavailable       the requested index is beyond the end of the log
            ├── SnapshotOutOfDate a snapshot older than the one already stored
            └── CorruptStorage    the file is not a Raft log of this schema, or its content
                                  breaks an invariant; never read as an empty log

The four storage sentinels mirror etcd-io/raft's ``storage.go``: the core expects
``Compacted`` and ``Unavailable`` in normal operation (a follower behind the compaction point
gets a snapshot instead of entries) and never lets them escape its public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.errors import MosaikError

if TYPE_CHECKING:
    from node.primitives.keys import PeerId


class RaftError(MosaikError):
    """Base of every error of the Raft core and its storage."""


class NotLeader(RaftError):
    """This node is not the leader; ``leader`` is the one it knows of, if any."""

    def __init__(self, leader: PeerId | None) -> None:
        hint = f"the leader is {leader.short()}" if leader is not None else "no leader is known"
        super().__init__(f"this node is not the leader ({hint})")
        self.leader = leader


class ProposalDropped(RaftError):
    """The leader cannot accept the proposal now; ``reason`` says why. Retrying later may work."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"proposal dropped: {reason}")
        self.reason = reason


class InvalidConfChange(RaftError):
    """A configuration change that cannot apply to the current configuration."""


class UsageError(RaftError):
    """The caller broke the Ready/Advance contract."""


class StorageError(RaftError):
    """The durable store failed; ``path`` names its file when it has one."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class Compacted(StorageError):
    """The requested index was compacted into a snapshot."""


class Unavailable(StorageError):
    """The requested index is beyond the last entry."""


class SnapshotOutOfDate(StorageError):
    """The snapshot is not newer than the one already stored."""


class CorruptStorage(StorageError):
    """The store's file is not a Raft log of the expected schema, or its content is invalid."""
