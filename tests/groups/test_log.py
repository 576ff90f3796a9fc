"""The core's view of the log: unstable entries over storage, and what becomes stable."""

from __future__ import annotations

import pytest

from node.groups.raft import Compacted, Entry, HardState, MemoryStorage, Snapshot, Unavailable
from node.groups.raft.errors import RaftError
from node.groups.raft.log import RaftLog
from tests.groups.test_storage import snapshot_at


def log_with(stable: int, term: int = 1) -> RaftLog:
    storage = MemoryStorage()
    storage.save(HardState(term=term), [Entry(i, term) for i in range(1, stable + 1)], None)
    return RaftLog(storage, committed=0)


def persist(log: RaftLog) -> None:
    entries = log.unstable_entries()
    log.storage.save(None, entries, None)  # type: ignore[attr-defined]
    log.stable_to(entries[-1].index, entries[-1].term)


def test_unstable_entries_extend_and_replace_within_memory() -> None:
    log = log_with(3)
    log.append([Entry(4, 1), Entry(5, 1), Entry(6, 1)])
    log.append([Entry(5, 2)])  # conflict inside the unstable part
    assert [(e.index, e.term) for e in log.unstable_entries()] == [(4, 1), (5, 2)]
    assert log.last_index() == 5 and log.term(5) == 2
    assert log.stable_last_index() == 3
    persist(log)
    assert log.stable_last_index() == 5 and not log.has_unstable()


def test_replacing_stable_entries_keeps_them_unstable_until_saved() -> None:
    log = log_with(5)
    log.append([Entry(3, 2)])
    assert log.last_index() == 3 and log.stable_last_index() == 2
    assert log.entries(1, 4) == [Entry(1, 1), Entry(2, 1), Entry(3, 2)]
    persist(log)
    assert log.storage.last_index() == 3 and log.term(3) == 2


def test_acknowledging_a_replaced_batch_does_not_mark_the_replacement_stable() -> None:
    log = log_with(2)
    log.append([Entry(3, 1), Entry(4, 1)])
    handed_out = log.unstable_entries()
    log.append([Entry(4, 2)])  # arrives while the Ready with 3..4@1 is being saved
    log.storage.save(None, handed_out, None)  # type: ignore[attr-defined]
    log.stable_to(4, 1)
    assert log.stable_last_index() == 2  # 4@2 is still to be saved
    assert [(e.index, e.term) for e in log.unstable_entries()] == [(3, 1), (4, 2)]


def test_committed_entries_are_never_overwritten() -> None:
    log = log_with(4)
    log.commit_to(3)
    with pytest.raises(RaftError, match="committed"):
        log.append([Entry(3, 2)])
    with pytest.raises(RaftError, match="past the last index"):
        log.commit_to(9)


def test_take_committed_respects_the_size_cap_and_marks_applied() -> None:
    log = log_with(0)
    log.append([Entry(i, 1, data=b"x" * 100) for i in range(1, 6)])
    log.commit_to(5)
    assert [e.index for e in log.take_committed(max_bytes=250)] == [1, 2]
    assert log.applied == 2 and log.has_committed_to_apply()
    assert [e.index for e in log.take_committed(max_bytes=10_000)] == [3, 4, 5]
    assert not log.has_committed_to_apply()


def test_restored_snapshot_hides_the_old_log() -> None:
    log = log_with(5)
    snapshot: Snapshot = snapshot_at(9, 3)
    log.restore(snapshot)
    assert (log.first_index(), log.last_index(), log.committed) == (10, 9, 9)
    assert log.term(9) == 3 and log.snapshot() == snapshot
    with pytest.raises(Compacted):
        log.term(5)
    with pytest.raises(Unavailable):
        log.term(10)
    log.stable_snapshot_to(9)
    assert log.pending_snapshot() is None


def test_conflict_search() -> None:
    log = log_with(0)
    log.append([Entry(1, 1), Entry(2, 1), Entry(3, 2), Entry(4, 2), Entry(5, 4)])
    assert log.find_conflict((Entry(2, 1), Entry(3, 2))) == 0
    assert log.find_conflict((Entry(3, 2), Entry(4, 3))) == 4
    assert log.find_conflict((Entry(5, 4), Entry(6, 4))) == 6
    assert log.find_conflict_by_term(5, 3) == (4, 2)
    assert log.find_conflict_by_term(5, 0) == (0, 0)
    assert log.is_up_to_date(5, 4) and log.is_up_to_date(1, 5) and not log.is_up_to_date(9, 3)
