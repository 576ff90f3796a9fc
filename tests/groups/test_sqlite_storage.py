"""SQLite storage: durability across a killed process, atomic transactions, bad files."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node.groups.raft import (
    CorruptStorage,
    Entry,
    EntryKind,
    HardState,
    Membership,
    RaftConfig,
    RaftNode,
    Role,
    Snapshot,
    SnapshotMeta,
    StorageError,
    bootstrap,
)
from node.groups.raft.sqlite_storage import SqliteStorage
from tests.groups.harness import peer

ROOT = Path(__file__).resolve().parents[2]


def filled(path: Path, n: int = 20, size: int = 10) -> None:
    with SqliteStorage(path) as s:
        s.save(
            HardState(term=2, vote=peer(1), commit=n // 2),
            [Entry(i, 2, data=bytes([i % 256]) * size) for i in range(1, n + 1)],
            None,
        )


# -- bad files ----------------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_corrupt_storage_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    path.write_bytes(b"definitely not a database " * 100)
    with pytest.raises(CorruptStorage, match="not a database") as info:
        SqliteStorage(path)
    assert info.value.path == str(path) and str(path) in str(info.value)


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE accounts (name TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(CorruptStorage, match="not a mosaik Raft log"):
        SqliteStorage(path)
    assert path.read_bytes() == before


def test_a_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    filled(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()
    with pytest.raises(CorruptStorage, match="schema version 7"):
        SqliteStorage(path)


def test_a_missing_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    filled(path)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE snapshot")
    db.commit()
    db.close()
    with pytest.raises(CorruptStorage, match="missing: snapshot"):
        SqliteStorage(path)


def test_a_gap_in_the_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    filled(path)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM entries WHERE idx = 7")
    db.commit()
    db.close()
    with pytest.raises(CorruptStorage, match="gaps"):
        SqliteStorage(path)


def test_damaged_pages_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    filled(path, n=400, size=200)
    data = bytearray(path.read_bytes())
    assert len(data) > 16 * 4096
    rng = random.Random(3)
    for page in range(2, len(data) // 4096):
        data[page * 4096 : page * 4096 + 64] = rng.randbytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStorage) as info:
        SqliteStorage(path)
    assert str(path) in str(info.value)


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    filled(path, n=400, size=200)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptStorage):
        SqliteStorage(path)


def test_an_empty_file_is_a_new_log(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    path.touch()
    with SqliteStorage(path) as s:
        assert s.last_index() == 0


def test_a_log_cannot_be_opened_twice(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    with SqliteStorage(path):
        with pytest.raises(StorageError, match="in use"):
            SqliteStorage(path)
    SqliteStorage(path).close()  # the lock went with the first storage


def test_an_unopenable_path_names_itself(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as info:
        SqliteStorage(tmp_path)
    assert str(tmp_path) in str(info.value)


# -- atomicity ----------------------------------------------------------------------------


class FailingConnection:
    """A connection that fails the statement starting with ``prefix``."""

    def __init__(self, real: sqlite3.Connection, prefix: str) -> None:
        self.real, self.prefix = real, prefix

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith(self.prefix):
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return self.real.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith(self.prefix):
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return self.real.executemany(sql, *args)


def _inject(storage: SqliteStorage, prefix: str) -> sqlite3.Connection:
    real = storage._db
    storage._db = FailingConnection(real, prefix)  # type: ignore[assignment]
    return real


def test_a_failed_save_leaves_the_log_and_hard_state_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    filled(path)
    with SqliteStorage(path) as s:
        real = _inject(s, "INSERT INTO entries")  # fails after the suffix was deleted
        with pytest.raises(StorageError, match="injected"):
            s.save(HardState(term=9), [Entry(5, 9, data=b"new")], None)
        s._db = real
        assert s.last_index() == 20 and s.initial_state()[0].term == 2
    with SqliteStorage(path) as s:
        assert s.last_index() == 20 and s.term(5) == 2
        assert s.initial_state()[0] == HardState(term=2, vote=peer(1), commit=10)


def test_a_failed_compaction_keeps_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    filled(path)
    snapshot = Snapshot(SnapshotMeta(8, 2, Membership.of([peer(1)])), b"state")
    with SqliteStorage(path) as s:
        real = _inject(s, "DELETE FROM entries WHERE idx <=")  # after the snapshot was written
        with pytest.raises(StorageError, match="injected"):
            s.compact(snapshot)
        s._db = real
        assert s.first_index() == 1
    with SqliteStorage(path) as s:
        assert s.first_index() == 1 and s.snapshot().index == 0
        s.compact(snapshot)
    with SqliteStorage(path) as s:
        assert s.first_index() == 9 and s.snapshot() == snapshot


# -- durability ---------------------------------------------------------------------------

WRITER = """
import sys
from node.groups.raft import Entry, HardState
from node.groups.raft.sqlite_storage import SqliteStorage

storage = SqliteStorage(sys.argv[1])
batch = 0
while True:
    batch += 1
    first = storage.last_index() + 1
    entries = [Entry(i, batch, data=b"%d" % i * 3) for i in range(first, first + 5)]
    storage.save(HardState(term=batch, commit=first - 1), entries, None)
    print(batch, entries[-1].index, flush=True)  # acknowledged: durable from here on
"""


@pytest.mark.parametrize("acks", [1, 17, 60])
def test_every_acknowledged_batch_survives_a_killed_writer(tmp_path: Path, acks: int) -> None:
    path = tmp_path / "raft.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert child.stdout is not None
    acked = (0, 0)
    try:
        for line in child.stdout:
            batch, last = map(int, line.split())
            acked = (batch, last)
            if batch >= acks:
                break
    finally:
        child.send_signal(signal.SIGKILL)  # mid-write: it keeps saving until killed
        child.wait()
    assert acked[0] >= acks, "the writer died before acknowledging enough batches"
    with SqliteStorage(path) as s:
        hard, _ = s.initial_state()
        assert s.last_index() >= acked[1] and hard.term >= acked[0]
        log = s.entries(1, s.last_index() + 1)
        assert [e.data for e in log] == [b"%d" % e.index * 3 for e in log]
        assert [e.index for e in log] == list(range(1, s.last_index() + 1))


def test_a_raft_node_restarts_from_its_sqlite_log(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    me = peer(1)
    config = RaftConfig()

    def handle(core: RaftNode, storage: SqliteStorage, applied: list[Entry]) -> None:
        while core.has_ready():
            rd = core.ready()
            storage.save(rd.hard_state, rd.entries, rd.snapshot)
            applied.extend(e for e in rd.committed_entries if e.kind == EntryKind.COMMAND)
            core.advance(rd)

    with SqliteStorage(path) as storage:
        bootstrap(storage, Membership.of([me]))
        core = RaftNode(me, storage, config, random.Random(1))
        core.campaign()
        for i in range(5):
            core.propose(b"cmd%d" % i)
        applied: list[Entry] = []
        handle(core, storage, applied)
        assert core.role is Role.LEADER and len(applied) == 5
        term, last = core.term, core.last_index
        storage.compact(Snapshot(core.snapshot_meta(), b"five commands"))
        core.propose(b"after the snapshot")
        handle(core, storage, applied)
    with SqliteStorage(path) as storage:
        core = RaftNode(me, storage, config, random.Random(2))
        assert (core.term, core.vote, core.last_index) == (term, me, last + 1)
        assert storage.snapshot().data == b"five commands"
        replayed: list[Entry] = []
        handle(core, storage, replayed)
        assert [e.data for e in replayed] == [b"after the snapshot"]
        core.campaign()
        handle(core, storage, replayed)
        assert core.role is Role.LEADER and core.term == term + 1
        stats = storage.statistics()
        assert stats.commits >= 1 and stats.commit_p50 > 0 and stats.entries_written >= 1


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DELETE FROM hard_state", "row is missing"),
        ("UPDATE hard_state SET vote = x'0102'", "invalid hard state"),
        ("UPDATE snapshot SET membership = x'00'", "invalid hard state or snapshot"),
        ("UPDATE hard_state SET commit_index = 99", "outside the log"),
    ],
)
def test_invalid_rows_are_refused(tmp_path: Path, sql: str, reason: str) -> None:
    path = tmp_path / "raft.db"
    filled(path)
    db = sqlite3.connect(path)
    db.execute(sql)
    db.commit()
    db.close()
    with pytest.raises(CorruptStorage, match=reason):
        SqliteStorage(path)
