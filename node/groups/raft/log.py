"""The Raft log as the core sees it: stable entries in ``Storage`` plus unstable ones.

Unstable entries (and a snapshot received from the leader) are held here until the shell
persisted them and called ``advance``. Entries at or past ``_offset`` are read from memory, the
rest from storage; storage may still hold a stale suffix from ``_offset`` on, which the next
``save`` replaces.
"""

from __future__ import annotations

from node.groups.raft.errors import Compacted, CorruptStorage, RaftError, Unavailable
from node.groups.raft.records import Entry, Snapshot
from node.groups.raft.storage import Storage, limit_size


class RaftLog:
    __slots__ = ("_offset", "_snapshot", "_unstable", "applied", "committed", "storage")

    def __init__(self, storage: Storage, committed: int) -> None:
        self.storage = storage
        first, last = storage.first_index(), storage.last_index()
        if not first - 1 <= committed <= last:
            raise CorruptStorage(
                f"persisted commit index {committed} is outside the log {first}..{last}"
            )
        self._unstable: list[Entry] = []
        self._offset = last + 1
        self._snapshot: Snapshot | None = None
        self.committed = committed
        self.applied = first - 1  # the state machine restarts from the snapshot

    def first_index(self) -> int:
        if self._snapshot is not None:
            return self._snapshot.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        if self._unstable:
            return self._unstable[-1].index
        if self._snapshot is not None:
            return self._snapshot.index
        return self._offset - 1

    def stable_last_index(self) -> int:
        """The last index known to be persisted."""
        return self._offset - 1

    def term(self, index: int) -> int:
        """``Compacted`` or ``Unavailable`` outside ``first_index() - 1 .. last_index()``."""
        if index >= self._offset:
            if index > self.last_index():
                raise Unavailable(f"index {index} is past the last index {self.last_index()}")
            return self._unstable[index - self._offset].term
        if self._snapshot is not None:
            if index == self._snapshot.index:
                return self._snapshot.term
            raise Compacted(f"index {index} is below the snapshot at {self._snapshot.index}")
        return self.storage.term(index)

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (Compacted, Unavailable):
            return False

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Thesis 3.6.1: a log is at least as up to date as ours if its last term is higher,
        or equal with an index at least as high."""
        ours = self.last_term()
        return last_term > ours or (last_term == ours and last_index >= self.last_index())

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries ``lo <= index < hi`` (capped at ``max_bytes``, at least one)."""
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise Compacted(f"index {lo} is compacted")
        if hi > self.last_index() + 1:
            raise Unavailable(f"index {hi - 1} is past the last index {self.last_index()}")
        found: list[Entry] = []
        if lo < self._offset:
            found = self.storage.entries(lo, min(hi, self._offset), max_bytes)
            if found[-1].index < min(hi, self._offset) - 1:
                return found  # the size cap stopped inside storage
        if hi > self._offset:
            found += self._unstable[max(lo, self._offset) - self._offset : hi - self._offset]
        return limit_size(found, max_bytes)

    def find_conflict(self, entries: tuple[Entry, ...]) -> int:
        """The index of the first entry that is new or conflicts with ours, 0 if none."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last (index, term) at or before ``index`` whose term is at most ``term``."""
        while index > 0:
            try:
                found = self.term(index)
            except Compacted:
                return index, 0
            if found <= term:
                return index, found
            index -= 1
        return 0, 0

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append, replacing every entry from ``entries[0].index`` on."""
        after = entries[0].index
        if after <= self.committed:
            raise RaftError(
                f"refusing to overwrite committed index {after} (commit {self.committed})"
            )
        if after == self._offset + len(self._unstable):
            self._unstable.extend(entries)
        elif after <= self._offset:
            # Replaces entries storage holds: they stay there until the next save overwrites them.
            self._unstable = list(entries)
            self._offset = after
        else:
            del self._unstable[after - self._offset :]
            self._unstable.extend(entries)

    def commit_to(self, index: int) -> bool:
        if index <= self.committed:
            return False
        if index > self.last_index():
            raise RaftError(f"commit index {index} is past the last index {self.last_index()}")
        self.committed = index
        return True

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the log by a snapshot received from the leader."""
        self._snapshot = snapshot
        self._unstable = []
        self._offset = snapshot.index + 1
        self.committed = snapshot.index

    def pending_snapshot(self) -> Snapshot | None:
        return self._snapshot

    def has_unstable(self) -> bool:
        return bool(self._unstable)

    def unstable_entries(self) -> tuple[Entry, ...]:
        return tuple(self._unstable)

    def snapshot(self) -> Snapshot:
        """The newest snapshot: a received one not yet persisted, else the stored one."""
        return self._snapshot if self._snapshot is not None else self.storage.snapshot()

    def has_committed_to_apply(self) -> bool:
        return self.committed > max(self.applied, self.first_index() - 1)

    def take_committed(self, max_bytes: int) -> list[Entry]:
        """Committed entries not yet handed out for applying, and mark them applied."""
        lo = max(self.applied + 1, self.first_index())
        if lo > self.committed:
            return []
        found = self.entries(lo, self.committed + 1, max_bytes)
        self.applied = found[-1].index
        return found

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to (``index``, ``term``) were persisted; a conflicting append in the
        meantime (the term differs now) leaves the replacement unstable."""
        if self._offset <= index <= self.last_index() and self.term(index) == term:
            del self._unstable[: index + 1 - self._offset]
            self._offset = index + 1

    def stable_snapshot_to(self, index: int) -> None:
        if self._snapshot is not None and self._snapshot.index == index:
            self._snapshot = None
