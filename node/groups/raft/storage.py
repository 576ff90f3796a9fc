"""The storage protocol the Raft core reads, and an in-memory implementation for tests.

The core only reads storage; the shell writes it, once per ``Ready``, with ``save`` (one atomic
group commit), and compacts it with ``compact`` after its state machine took a snapshot.
Entries live at indices ``first_index() .. last_index()``; index ``first_index() - 1`` is the
latest snapshot's index, whose term ``term()`` still answers. Reads outside that range raise
the sentinels ``Compacted`` (below) and ``Unavailable`` (beyond the end).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

from node.groups.raft.errors import Compacted, SnapshotOutOfDate, StorageError, Unavailable
from node.groups.raft.records import EMPTY_SNAPSHOT, Entry, HardState, Snapshot, SnapshotMeta


class Storage(Protocol):
    """Durable Raft state: hard state, the log after the latest snapshot, and that snapshot."""

    def initial_state(self) -> tuple[HardState, SnapshotMeta]:
        """The persisted hard state and the latest snapshot's metadata (index 0 if none)."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries ``lo <= index < hi``; at most ``max_bytes`` of them but always at least one
        when ``lo < hi``. ``Compacted`` if ``lo`` was compacted, ``Unavailable`` if ``hi`` is past
        the end."""
        ...

    def term(self, index: int) -> int:
        """The term of the entry at ``index``; valid from ``first_index() - 1`` (the snapshot)
        to ``last_index()``."""
        ...

    def first_index(self) -> int:
        """The index of the first entry that was not compacted."""
        ...

    def last_index(self) -> int:
        """The index of the last entry (the snapshot's index when the log is empty)."""
        ...

    def snapshot(self) -> Snapshot:
        """The latest snapshot (the empty snapshot at index 0 if none was taken)."""
        ...

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        """Persist one ``Ready`` atomically and durably (fsync) before returning.

        In order: ``snapshot`` replaces the whole log (it is newer than anything stored);
        ``entries`` replace every stored entry from ``entries[0].index`` on (the conflicting
        suffix is truncated) and are appended; ``hard_state`` replaces the stored one.
        """
        ...

    def compact(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` and drop the entries up to its index, in one transaction.

        ``snapshot.meta`` comes from ``RaftNode.snapshot_meta()`` and ``snapshot.data`` from the
        state machine at that index. ``SnapshotOutOfDate`` if not newer than the stored one,
        ``Unavailable`` if its index is past the end of the log.
        """
        ...


def limit_size(entries: list[Entry], max_bytes: int | None) -> list[Entry]:
    """The longest prefix within ``max_bytes`` (never empty if ``entries`` is not)."""
    if max_bytes is None or not entries:
        return entries
    total = 0
    for n, entry in enumerate(entries):
        total += entry.size
        if total > max_bytes and n > 0:
            return entries[:n]
    return entries


def check_contiguous(entries: Sequence[Entry]) -> None:
    for prev, entry in itertools.pairwise(entries):
        if entry.index != prev.index + 1 or entry.term < prev.term:
            raise StorageError(
                f"entries are not contiguous: {prev.index}@{prev.term} then "
                f"{entry.index}@{entry.term}"
            )


def check_compaction(snapshot: Snapshot, current: SnapshotMeta, last_index: int) -> None:
    if snapshot.index <= current.index:
        raise SnapshotOutOfDate(
            f"snapshot at {snapshot.index} is not newer than the stored one at {current.index}"
        )
    if snapshot.index > last_index:
        raise Unavailable(f"cannot compact to {snapshot.index}: the log ends at {last_index}")


class MemoryStorage:
    """Storage in memory: for tests and the deterministic simulation, where a "crash" keeps
    this object (what was saved) and loses everything else."""

    def __init__(self) -> None:
        self._hard = HardState()
        self._snapshot = EMPTY_SNAPSHOT
        self._log: list[Entry] = []  # entries after the snapshot's index

    def initial_state(self) -> tuple[HardState, SnapshotMeta]:
        return self._hard, self._snapshot.meta

    @property
    def hard_state(self) -> HardState:
        return self._hard

    def first_index(self) -> int:
        return self._snapshot.index + 1

    def last_index(self) -> int:
        return self._snapshot.index + len(self._log)

    def term(self, index: int) -> int:
        offset = self._snapshot.index
        if index < offset:
            raise Compacted(f"index {index} is compacted (snapshot at {offset})")
        if index == offset:
            return self._snapshot.term
        if index > offset + len(self._log):
            raise Unavailable(f"index {index} is past the last index {self.last_index()}")
        return self._log[index - offset - 1].term

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        offset = self._snapshot.index
        if lo <= offset:
            raise Compacted(f"index {lo} is compacted (snapshot at {offset})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"index {hi - 1} is past the last index {self.last_index()}")
        return limit_size(self._log[lo - offset - 1 : hi - offset - 1], max_bytes)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        check_contiguous(entries)
        if snapshot is not None and snapshot.index <= self._snapshot.index:
            raise SnapshotOutOfDate(
                f"snapshot at {snapshot.index} is not newer than the stored one at "
                f"{self._snapshot.index}"
            )
        if entries:
            last = snapshot.index if snapshot is not None else self.last_index()
            if entries[0].index > last + 1:
                raise StorageError(
                    f"entries start at {entries[0].index} but the log ends at {last}"
                )
        if snapshot is not None:
            self._snapshot, self._log = snapshot, []
        if entries:
            offset = self._snapshot.index
            new = [e for e in entries if e.index > offset]
            if new:
                del self._log[new[0].index - offset - 1 :]
                self._log.extend(new)
        if hard_state is not None:
            self._hard = hard_state

    def compact(self, snapshot: Snapshot) -> None:
        check_compaction(snapshot, self._snapshot.meta, self.last_index())
        if self.term(snapshot.index) != snapshot.term:
            raise StorageError(
                f"snapshot at {snapshot.index} has term {snapshot.term} but the log has "
                f"{self.term(snapshot.index)} there"
            )
        del self._log[: snapshot.index - self._snapshot.index]
        self._snapshot = snapshot
