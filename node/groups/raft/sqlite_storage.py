"""Durable Raft storage in one SQLite file (stdlib ``sqlite3``).

WAL journal with ``synchronous=FULL``: every committed transaction is fsynced before
``save``/``compact`` return, so a ``Ready`` is durable before its messages are sent. One
transaction per Ready is the group commit: all its entries, the hard state and a received
snapshot cost one fsync. ``compact`` stores the state machine's snapshot and drops the
entries it covers in the same transaction, so a crash leaves either the old log or the
compacted one.

The file is opened in exclusive locking mode: a second process (or a second storage in this
process) cannot use the same log. A file that is not SQLite, belongs to another application,
has another schema version or fails SQLite's quick integrity check raises ``CorruptStorage``
naming the file; it is never read as an empty log.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

import msgspec

from node.errors import DecodeError
from node.groups.raft.errors import (
    Compacted,
    CorruptStorage,
    SnapshotOutOfDate,
    StorageError,
    Unavailable,
)
from node.groups.raft.records import Entry, EntryKind, HardState, Membership, Snapshot, SnapshotMeta
from node.groups.raft.storage import check_compaction, check_contiguous
from node.primitives import Decoder, PeerId, encode

APPLICATION_ID = 0x6D526674  # "mRft" in SQLite's header: marks the file as ours
SCHEMA_VERSION = 1
_LATENCY_SAMPLES = 1024

_TABLES = {
    "hard_state": "CREATE TABLE hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), "
    "term INTEGER NOT NULL, vote BLOB, commit_index INTEGER NOT NULL)",
    "entries": "CREATE TABLE entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, "
    "kind INTEGER NOT NULL, data BLOB NOT NULL)",
    "snapshot": "CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), "
    "idx INTEGER NOT NULL, term INTEGER NOT NULL, membership BLOB NOT NULL, "
    "data BLOB NOT NULL)",
}

_MEMBERSHIP = Decoder(Membership)


class StorageStatistics(msgspec.Struct, frozen=True):
    """Write-side counters. Latencies are of each transaction's COMMIT, where SQLite fsyncs
    the WAL, over the last 1024 commits, in seconds."""

    commits: int
    entries_written: int
    bytes_written: int
    commit_seconds_total: float
    commit_p50: float
    commit_p99: float
    commit_max: float


class SqliteStorage:
    """The Raft log, hard state and latest snapshot in the SQLite file at ``path``.

    Not thread-safe: use it from one thread at a time (it may be a worker thread).
    """

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = True) -> None:
        self._path = os.fspath(path)
        self._latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._commits = self._entries_written = self._bytes_written = 0
        self._commit_seconds = 0.0
        try:
            self._db = sqlite3.connect(
                self._path, timeout=0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the Raft log: {exc}", self._path) from None
        try:
            with self._translate():
                self._open(verify)
        except BaseException:
            self._db.close()
            raise

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def statistics(self) -> StorageStatistics:
        ordered = sorted(self._latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

        return StorageStatistics(
            commits=self._commits,
            entries_written=self._entries_written,
            bytes_written=self._bytes_written,
            commit_seconds_total=self._commit_seconds,
            commit_p50=pct(0.5),
            commit_p99=pct(0.99),
            commit_max=ordered[-1] if ordered else 0.0,
        )

    def _open(self, verify: bool) -> None:
        db = self._db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if app_id == 0 and version == 0 and not tables:
            self._create()
        elif app_id != APPLICATION_ID:
            raise CorruptStorage(
                f"not a mosaik Raft log (SQLite application_id {app_id:#x})", self._path
            )
        elif version != SCHEMA_VERSION:
            raise CorruptStorage(
                f"Raft log schema version {version}, this build reads {SCHEMA_VERSION}",
                self._path,
            )
        elif tables != set(_TABLES):
            missing = sorted(set(_TABLES) - tables)
            raise CorruptStorage(f"Raft log tables missing: {', '.join(missing)}", self._path)
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(f"cannot use a write-ahead log (journal mode {mode})", self._path)
        db.execute("PRAGMA synchronous = FULL")
        db.execute("BEGIN EXCLUSIVE").execute("COMMIT")  # take the lock now and hold it
        if verify:
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise CorruptStorage(
                    f"integrity check failed: {'; '.join(problems[:3])}", self._path
                )
        self._load()

    def _create(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        for ddl in _TABLES.values():
            db.execute(ddl)
        db.execute("INSERT INTO hard_state VALUES (0, 0, NULL, 0)")
        db.execute("INSERT INTO snapshot VALUES (0, 0, 0, ?, x'')", (encode(Membership()),))
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")

    def _load(self) -> None:
        db = self._db
        row = db.execute("SELECT term, vote, commit_index FROM hard_state WHERE id = 0").fetchone()
        snap = db.execute("SELECT idx, term, membership FROM snapshot WHERE id = 0").fetchone()
        if row is None or snap is None:
            raise CorruptStorage("the hard state or snapshot row is missing", self._path)
        try:
            vote = PeerId(row[1]) if row[1] is not None else None
            membership = _MEMBERSHIP.decode(snap[2])
            self._hard = HardState(row[0], vote, row[2])
            self._meta = SnapshotMeta(snap[0], snap[1], membership)
        except (ValueError, TypeError, DecodeError) as exc:
            raise CorruptStorage(f"invalid hard state or snapshot: {exc}", self._path) from None
        lo, hi, count = db.execute("SELECT min(idx), max(idx), count(*) FROM entries").fetchone()
        if count and (lo != self._meta.index + 1 or hi - lo + 1 != count):
            raise CorruptStorage(
                f"the log has gaps: {count} entries in {lo}..{hi} after a snapshot at "
                f"{self._meta.index}",
                self._path,
            )
        self._last = hi if count else self._meta.index
        if not self._meta.index <= self._hard.commit <= self._last and self._hard.commit:
            raise CorruptStorage(
                f"commit index {self._hard.commit} is outside the log "
                f"{self._meta.index}..{self._last}",
                self._path,
            )

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """SQLite's errors become ours, naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "malformed" in text or "not a database" in text or "corrupt" in text:
                raise CorruptStorage(f"not a usable Raft log: {text}", self._path) from None
            if "locked" in text:
                raise StorageError(
                    "the Raft log is in use by another process or storage", self._path
                ) from None
            raise StorageError(text, self._path) from None
        except sqlite3.Error as exc:
            raise StorageError(str(exc), self._path) from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        with self._translate():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            started = time.perf_counter()
            db.execute("COMMIT")
            elapsed = time.perf_counter() - started
        self._commits += 1
        self._commit_seconds += elapsed
        self._latencies.append(elapsed)

    # -- reads --------------------------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, SnapshotMeta]:
        return self._hard, self._meta

    def first_index(self) -> int:
        return self._meta.index + 1

    def last_index(self) -> int:
        return self._last

    def term(self, index: int) -> int:
        self._check_range(index, index)
        if index == self._meta.index:
            return self._meta.term
        with self._translate():
            row = self._db.execute("SELECT term FROM entries WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise CorruptStorage(f"entry {index} is missing", self._path)
        return int(row[0])

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        if lo <= self._meta.index:
            raise Compacted(f"index {lo} is compacted (snapshot at {self._meta.index})")
        if lo >= hi:
            return []
        self._check_range(lo, hi - 1)
        found: list[Entry] = []
        size = 0
        capped = False
        with self._translate():
            rows = self._db.execute(
                "SELECT idx, term, kind, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                (lo, hi),
            )
            for idx, term, kind, data in rows:
                if idx != lo + len(found):
                    raise CorruptStorage(f"entry {lo + len(found)} is missing", self._path)
                try:
                    entry = Entry(idx, term, EntryKind(kind), bytes(data))
                except ValueError:
                    raise CorruptStorage(
                        f"entry {idx} has unknown kind {kind}", self._path
                    ) from None
                size += entry.size
                if max_bytes is not None and size > max_bytes and found:
                    capped = True
                    break
                found.append(entry)
        if len(found) < hi - lo and not capped:
            raise CorruptStorage(f"entry {lo + len(found)} is missing", self._path)
        return found

    def snapshot(self) -> Snapshot:
        if self._meta.index == 0:
            return Snapshot(self._meta)
        with self._translate():
            row = self._db.execute("SELECT data FROM snapshot WHERE id = 0").fetchone()
        return Snapshot(self._meta, bytes(row[0]))

    def _check_range(self, lo: int, hi: int) -> None:
        if lo < self._meta.index:
            raise Compacted(f"index {lo} is compacted (snapshot at {self._meta.index})")
        if hi > self._last:
            raise Unavailable(f"index {hi} is past the last index {self._last}")

    # -- writes -------------------------------------------------------------------------------

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        check_contiguous(entries)
        meta, last = self._meta, self._last
        if snapshot is not None:
            if snapshot.index <= meta.index:
                raise SnapshotOutOfDate(
                    f"snapshot at {snapshot.index} is not newer than the stored one at "
                    f"{meta.index}",
                    self._path,
                )
            meta, last = snapshot.meta, snapshot.index
        new = [e for e in entries if e.index > meta.index]
        if new and new[0].index > last + 1:
            raise StorageError(
                f"entries start at {new[0].index} but the log ends at {last}", self._path
            )
        if hard_state is None and not new and snapshot is None:
            return
        with self._transaction() as db:
            if snapshot is not None:
                db.execute("DELETE FROM entries")
                self._write_snapshot(db, snapshot)
            if new:
                db.execute("DELETE FROM entries WHERE idx >= ?", (new[0].index,))
                db.executemany(
                    "INSERT INTO entries VALUES (?, ?, ?, ?)",
                    [(e.index, e.term, int(e.kind), e.data) for e in new],
                )
                last = new[-1].index
            if hard_state is not None:
                vote = hard_state.vote.bytes if hard_state.vote is not None else None
                db.execute(
                    "UPDATE hard_state SET term = ?, vote = ?, commit_index = ? WHERE id = 0",
                    (hard_state.term, vote, hard_state.commit),
                )
        self._meta, self._last = meta, last
        if hard_state is not None:
            self._hard = hard_state
        self._entries_written += len(new)
        self._bytes_written += sum(len(e.data) for e in new)

    def compact(self, snapshot: Snapshot) -> None:
        check_compaction(snapshot, self._meta, self._last)
        if self.term(snapshot.index) != snapshot.term:
            raise StorageError(
                f"snapshot at {snapshot.index} has term {snapshot.term} but the log has "
                f"{self.term(snapshot.index)} there",
                self._path,
            )
        with self._transaction() as db:
            self._write_snapshot(db, snapshot)
            db.execute("DELETE FROM entries WHERE idx <= ?", (snapshot.index,))
        self._meta = snapshot.meta

    @staticmethod
    def _write_snapshot(db: sqlite3.Connection, snapshot: Snapshot) -> None:
        meta = snapshot.meta
        db.execute(
            "UPDATE snapshot SET idx = ?, term = ?, membership = ?, data = ? WHERE id = 0",
            (meta.index, meta.term, encode(meta.membership), snapshot.data),
        )
