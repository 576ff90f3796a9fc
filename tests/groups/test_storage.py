"""The storage contract, for the in-memory and the SQLite implementations alike.

The SQLite variant reopens its file before every read-back, so each test also checks that
what was saved survives closing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from node.groups.raft import (
    Compacted,
    Entry,
    EntryKind,
    HardState,
    Membership,
    MemoryStorage,
    Snapshot,
    SnapshotMeta,
    SnapshotOutOfDate,
    Storage,
    StorageError,
    Unavailable,
)
from node.groups.raft.sqlite_storage import SqliteStorage
from tests.groups.harness import peer

MEMBERS = Membership.of([peer(1), peer(2), peer(3)])


class Subject:
    """A storage under test and a way to reopen it."""

    def __init__(self, make: Callable[[], Storage], reopen: Callable[[], Storage]) -> None:
        self.storage = make()
        self._reopen = reopen

    def reopened(self) -> Storage:
        self.storage = self._reopen()
        return self.storage


@pytest.fixture(params=["memory", "sqlite"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "memory":
        memory = MemoryStorage()
        yield Subject(lambda: memory, lambda: memory)
        return
    path = tmp_path / "raft.db"
    opened: list[SqliteStorage] = []

    def make() -> Storage:
        for storage in opened:
            storage.close()
        opened.append(SqliteStorage(path))
        return opened[-1]

    yield Subject(make, make)
    for storage in opened:
        storage.close()


def entries(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(i, term, data=b"e%d" % i) for i in range(lo, hi)]


def snapshot_at(index: int, term: int, data: bytes = b"state") -> Snapshot:
    return Snapshot(SnapshotMeta(index, term, MEMBERS), data)


def test_fresh_storage_is_empty(subject: Subject) -> None:
    s = subject.storage
    assert s.initial_state() == (HardState(), SnapshotMeta())
    assert (s.first_index(), s.last_index(), s.term(0)) == (1, 0, 0)
    assert s.entries(1, 1) == []
    assert s.snapshot().index == 0
    with pytest.raises(Unavailable):
        s.term(1)
    with pytest.raises(Unavailable):
        s.entries(1, 2)


def test_entries_and_hard_state_round_trip(subject: Subject) -> None:
    hard = HardState(term=3, vote=peer(2), commit=4)
    config = Entry(1, 1, EntryKind.CONFIG, b"\x92\x90\x90")
    subject.storage.save(hard, [config, *entries(2, 6, term=3)], None)
    s = subject.reopened()
    assert s.initial_state()[0] == hard
    assert (s.first_index(), s.last_index()) == (1, 5)
    assert s.entries(1, 6) == [config, *entries(2, 6, term=3)]
    assert s.entries(3, 5) == entries(3, 5, term=3)
    assert [s.term(i) for i in range(0, 6)] == [0, 1, 3, 3, 3, 3]


def test_size_limit_returns_at_least_one_entry(subject: Subject) -> None:
    big = [Entry(i, 1, data=b"x" * 100) for i in range(1, 6)]
    subject.storage.save(None, big, None)
    s = subject.reopened()
    assert s.entries(1, 6, max_bytes=10) == big[:1]
    assert s.entries(1, 6, max_bytes=250) == big[:2]
    assert s.entries(1, 6, max_bytes=None) == big


def test_conflicting_suffix_is_truncated(subject: Subject) -> None:
    subject.storage.save(HardState(term=1), entries(1, 8), None)
    subject.storage.save(HardState(term=2), entries(4, 6, term=2), None)
    s = subject.reopened()
    assert s.last_index() == 5
    assert s.entries(1, 6) == entries(1, 4) + entries(4, 6, term=2)
    with pytest.raises(Unavailable):
        s.term(6)


def test_gaps_and_disorder_are_refused(subject: Subject) -> None:
    s = subject.storage
    s.save(None, entries(1, 3), None)
    with pytest.raises(StorageError, match="log ends at 2"):
        s.save(None, entries(4, 5), None)
    with pytest.raises(StorageError, match="not contiguous"):
        s.save(None, [Entry(3, 1), Entry(5, 1)], None)
    with pytest.raises(StorageError, match="not contiguous"):
        s.save(None, [Entry(3, 2), Entry(4, 1)], None)
    assert subject.reopened().last_index() == 2


def test_compaction_keeps_the_tail_and_answers_the_snapshot_term(subject: Subject) -> None:
    subject.storage.save(HardState(term=2, commit=6), entries(1, 4) + entries(4, 9, 2), None)
    subject.storage.compact(snapshot_at(5, 2))
    s = subject.reopened()
    assert (s.first_index(), s.last_index()) == (6, 8)
    assert s.term(5) == 2
    assert s.snapshot() == snapshot_at(5, 2)
    assert s.initial_state()[1] == snapshot_at(5, 2).meta
    assert s.entries(6, 9) == entries(6, 9, 2)
    with pytest.raises(Compacted):
        s.term(4)
    with pytest.raises(Compacted):
        s.entries(5, 7)


def test_compaction_is_checked(subject: Subject) -> None:
    s = subject.storage
    s.save(None, entries(1, 6), None)
    s.compact(snapshot_at(3, 1))
    with pytest.raises(SnapshotOutOfDate):
        s.compact(snapshot_at(3, 1))
    with pytest.raises(Unavailable):
        s.compact(snapshot_at(9, 1))
    with pytest.raises(StorageError, match="term"):
        s.compact(snapshot_at(4, 7))
    assert subject.reopened().first_index() == 4


def test_saved_snapshot_replaces_the_log_and_entries_follow_it(subject: Subject) -> None:
    subject.storage.save(HardState(term=1), entries(1, 6), None)
    hard = HardState(term=4, vote=None, commit=10)
    subject.storage.save(hard, entries(11, 13, term=4), snapshot_at(10, 3))
    s = subject.reopened()
    assert (s.first_index(), s.last_index(), s.term(10)) == (11, 12, 3)
    assert s.entries(11, 13) == entries(11, 13, term=4)
    assert s.initial_state() == (hard, snapshot_at(10, 3).meta)
    with pytest.raises(SnapshotOutOfDate):
        s.save(None, [], snapshot_at(10, 3))


def test_entries_covered_by_the_snapshot_are_ignored(subject: Subject) -> None:
    subject.storage.save(None, entries(1, 6), None)
    subject.storage.compact(snapshot_at(5, 1))
    subject.storage.save(None, entries(4, 8), None)
    s = subject.reopened()
    assert (s.first_index(), s.last_index()) == (6, 7)
    assert s.entries(6, 8) == entries(6, 8)


def test_empty_save_changes_nothing(subject: Subject) -> None:
    subject.storage.save(HardState(term=1), entries(1, 3), None)
    subject.storage.save(None, [], None)
    s = subject.reopened()
    assert s.initial_state()[0] == HardState(term=1)
    assert s.last_index() == 2
