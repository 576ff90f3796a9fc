"""Raft consensus for groups: a sans-I/O core (``RaftNode``), its records and messages, and
durable storage (``MemoryStorage`` for tests, ``SqliteStorage`` for nodes).

The shell drives a ``RaftNode`` with ``tick()``, ``step(message)`` and proposals, and handles
each ``Ready`` in the order its fields document, then calls ``advance()``.

``SqliteStorage`` resolves on first use, so importing the core does not load sqlite3.
"""

import typing

from node._lazy import lazy as _lazy
from node.groups.raft.config import LeadershipPreference, PreferenceKind, RaftConfig
from node.groups.raft.configs import bootstrap
from node.groups.raft.core import RaftNode
from node.groups.raft.errors import (
    Compacted,
    CorruptStorage,
    InvalidConfChange,
    NotLeader,
    ProposalDropped,
    RaftError,
    SnapshotOutOfDate,
    StorageError,
    Unavailable,
    UsageError,
)
from node.groups.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode_membership,
)
from node.groups.raft.ready import FollowerProgress, ReadState, Ready, Role, SoftState
from node.groups.raft.records import (
    EMPTY_SNAPSHOT,
    ConfChange,
    ConfChangeKind,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Snapshot,
    SnapshotMeta,
)
from node.groups.raft.storage import MemoryStorage, Storage

if typing.TYPE_CHECKING:
    from node.groups.raft.sqlite_storage import SqliteStorage, StorageStatistics
else:
    __getattr__, __dir__ = _lazy(
        __name__, {"node.groups.raft.sqlite_storage": ("SqliteStorage", "StorageStatistics")}
    )

__all__ = [
    "EMPTY_SNAPSHOT",
    "AppendEntries",
    "AppendResponse",
    "Compacted",
    "ConfChange",
    "ConfChangeKind",
    "CorruptStorage",
    "Entry",
    "EntryKind",
    "FollowerProgress",
    "HardState",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "InvalidConfChange",
    "LeadershipPreference",
    "Membership",
    "MemoryStorage",
    "Message",
    "NotLeader",
    "PreferenceKind",
    "ProposalDropped",
    "RaftConfig",
    "RaftError",
    "RaftNode",
    "ReadIndexRequest",
    "ReadIndexResponse",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "SnapshotOutOfDate",
    "SoftState",
    "SqliteStorage",
    "Storage",
    "StorageError",
    "StorageStatistics",
    "TimeoutNow",
    "Unavailable",
    "UsageError",
    "VoteRequest",
    "VoteResponse",
    "bootstrap",
    "decode_membership",
]
