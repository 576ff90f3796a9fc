"""The exported names, and no foreign exception through the public API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import node.groups
import node.groups.raft
from node.errors import MosaikError
from node.groups.raft import Entry, HardState, RaftError, SqliteStorage, StorageError

RAFT_EXPORTS = {
    "EMPTY_SNAPSHOT", "AppendEntries", "AppendResponse", "Compacted", "ConfChange",
    "ConfChangeKind", "CorruptStorage", "Entry", "EntryKind", "FollowerProgress", "HardState",
    "Heartbeat", "HeartbeatResponse", "InstallSnapshot", "InvalidConfChange",
    "LeadershipPreference", "Membership", "MemoryStorage", "Message", "NotLeader",
    "PreferenceKind", "ProposalDropped", "RaftConfig", "RaftError", "RaftNode",
    "ReadIndexRequest", "ReadIndexResponse", "ReadState", "Ready", "Role", "Snapshot",
    "SnapshotMeta", "SnapshotOutOfDate", "SoftState", "SqliteStorage", "Storage",
    "StorageError", "StorageStatistics", "TimeoutNow", "Unavailable", "UsageError",
    "VoteRequest", "VoteResponse", "bootstrap", "decode_membership",
}  # fmt: skip


GROUPS_EXPORTS = {
    "ALPN", "ApplyContext", "CommandsNotApplied", "Committed", "ConsensusConfig",
    "CorruptStorage", "Encoding", "Executed", "Group", "GroupError", "GroupStopped",
    "GroupTerminated", "Groups", "LeadershipPreference", "LogPosition", "Membership",
    "MemoryStorage", "Offline", "RaftConfig", "RaftError", "RaftNode", "Role", "SqliteStorage",
    "StateMachine", "Storage", "When", "group_id", "group_secret",
}  # fmt: skip


def test_exported_names() -> None:
    assert set(node.groups.raft.__all__) == RAFT_EXPORTS
    for name in node.groups.raft.__all__:
        assert getattr(node.groups.raft, name) is not None
    assert set(node.groups.__all__) == GROUPS_EXPORTS
    for name in node.groups.__all__:
        assert getattr(node.groups, name) is not None
    assert issubclass(RaftError, MosaikError)
    assert issubclass(node.groups.GroupError, MosaikError)
    errors = (node.groups.Offline, node.groups.GroupTerminated, node.groups.GroupStopped)
    for error in (*errors, node.groups.Encoding):
        assert issubclass(error, node.groups.CommandsNotApplied)


def test_closed_storage_raises_storage_error_not_sqlite3(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "raft.db")
    storage.save(HardState(term=1), [Entry(1, 1), Entry(2, 1)], None)
    storage.close()
    calls = [
        lambda: storage.save(HardState(term=2), [Entry(3, 1)], None),
        lambda: storage.entries(1, 3),
        lambda: storage.term(2),
    ]
    for call in calls:
        with pytest.raises(StorageError) as info:
            call()
        assert not isinstance(info.value, sqlite3.Error)
