"""The replicated double-ended priority queue: its state machine
(``PriorityQueueMachine``), reader and writer.

Each entry has a priority ``P``, a unique key ``K`` and a value ``V``. Entries sharing a
priority form a bucket, ordered by arrival: an entry arrives in a bucket when its key is
inserted, or when an insert or ``update_priority`` moves it to a different priority (a
value update, or an insert with the same priority, keeps its place).

Iteration order: ``iter_asc`` walks buckets by ascending priority, ``iter_desc`` by descending
priority; within a bucket both go by arrival (earliest first). So ``get_min`` is the earliest
arrival at the lowest priority and ``get_max`` the earliest arrival at the highest.

Capacity: with ``capacity`` set, whenever an insert makes the queue larger than it, the
latest arrival of the lowest-priority bucket is evicted (a newcomer loses ties), until the
queue fits again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar, Union

import msgspec
from sortedcontainers import SortedDict

from node.collections._handle import Handle
from node.collections._machine import CollectionMachine, Version
from node.collections._types import check_hashable_type
from node.errors import ConfigError
from node.primitives.digest import StoreId

P = TypeVar("P")
K = TypeVar("K")
V = TypeVar("V")


class PqInsert(msgspec.Struct, Generic[P, K, V], frozen=True, array_like=True, tag="insert"):
    priority: P
    key: K
    value: V


class PqExtend(msgspec.Struct, Generic[P, K, V], frozen=True, array_like=True, tag="extend"):
    entries: list[tuple[P, K, V]]


class PqUpdatePriority(
    msgspec.Struct, Generic[P, K], frozen=True, array_like=True, tag="update_priority"
):
    key: K
    priority: P


class PqUpdateValue(
    msgspec.Struct, Generic[K, V], frozen=True, array_like=True, tag="update_value"
):
    key: K
    value: V


class PqCompareExchangeValue(
    msgspec.Struct, Generic[K, V], frozen=True, array_like=True, tag="cas_value"
):
    """Replace the value of ``key`` with ``new`` (remove the entry if None) when it equals
    ``expected``; a missing key changes nothing."""

    key: K
    expected: V
    new: V | None


class PqRemoveKeys(msgspec.Struct, Generic[K], frozen=True, array_like=True, tag="remove_keys"):
    keys: list[K]


class PqRemoveRange(msgspec.Struct, Generic[P], frozen=True, array_like=True, tag="remove_range"):
    """Remove every entry whose priority lies between ``start`` and ``end`` (None: unbounded)."""

    start: P | None
    end: P | None
    start_inclusive: bool = True
    end_inclusive: bool = False


class PqClear(msgspec.Struct, frozen=True, array_like=True, tag="clear"):
    pass


class PqSnapshot(msgspec.Struct, Generic[P, K, V], frozen=True, array_like=True):
    """Entries in ascending order (so restoring rebuilds the same buckets in the same order)."""

    version: int
    entries: list[tuple[P, K, V]]


class PriorityQueueMachine(CollectionMachine["PqSnapshot[P, K, V]"], Generic[P, K, V]):
    kind = "depq"

    def __init__(
        self,
        store_id: StoreId,
        priority: Any,
        key: Any,
        value: Any,
        *,
        capacity: int | None = None,
        writer: bool = True,
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ConfigError(f"priority queue capacity must be at least 1, got {capacity}")
        check_hashable_type(priority, "priority")
        check_hashable_type(key, "key")
        self.capacity = capacity
        self.command_type = Union[  # noqa: UP007 - a runtime union of parametrized generics
            PqInsert[priority, key, value],
            PqExtend[priority, key, value],
            PqUpdatePriority[priority, key],
            PqUpdateValue[key, value],
            PqCompareExchangeValue[key, value],
            PqRemoveKeys[key],
            PqRemoveRange[priority],
            PqClear,
        ]
        self.snapshot_type = PqSnapshot[priority, key, value]
        self.by_key: dict[K, tuple[P, V]] = {}
        # priority -> {key: value} in arrival order; SortedDict keeps priorities ordered
        self.buckets: Any = SortedDict()
        options = () if capacity is None else (f"capacity={capacity}",)
        super().__init__(store_id, (priority, key, value), writer=writer, options=options)

    def __len__(self) -> int:
        return len(self.by_key)

    # -- reads --------------------------------------------------------------------------------

    def iter_asc(self) -> Iterator[tuple[P, K, V]]:
        for priority, bucket in self.buckets.items():
            for key, value in bucket.items():
                yield priority, key, value

    def iter_desc(self) -> Iterator[tuple[P, K, V]]:
        for priority in reversed(self.buckets):
            for key, value in self.buckets[priority].items():
                yield priority, key, value

    def first_of(self, position: int) -> tuple[P, K, V] | None:
        """The earliest arrival of the lowest (``0``) or highest (``-1``) priority bucket."""
        if not self.buckets:
            return None
        priority, bucket = self.buckets.peekitem(position)
        key = next(iter(bucket))
        return priority, key, bucket[key]

    # -- writes -------------------------------------------------------------------------------

    def _apply(self, command: Any) -> None:
        match command:
            case PqInsert(priority=priority, key=key, value=value):
                self._insert(priority, key, value)
                self._evict()
            case PqExtend(entries=entries):
                for priority, key, value in entries:
                    self._insert(priority, key, value)
                    self._evict()
            case PqUpdatePriority(key=key, priority=priority):
                if (entry := self.by_key.get(key)) is not None:
                    self._insert(priority, key, entry[1])
            case PqUpdateValue(key=key, value=value):
                if (entry := self.by_key.get(key)) is not None:
                    self._insert(entry[0], key, value)
            case PqCompareExchangeValue(key=key, expected=expected, new=new):
                entry = self.by_key.get(key)
                if entry is not None and entry[1] == expected:
                    if new is None:
                        self._remove(key)
                    else:
                        self._insert(entry[0], key, new)
            case PqRemoveKeys(keys=keys):
                for key in keys:
                    self._remove(key)
            case PqRemoveRange(start=start, end=end, start_inclusive=si, end_inclusive=ei):
                for priority in list(self.buckets.irange(start, end, (si, ei))):
                    for key in self.buckets.pop(priority):
                        del self.by_key[key]
            case PqClear():
                self.by_key.clear()
                self.buckets.clear()

    def _insert(self, priority: P, key: K, value: V) -> None:
        old = self.by_key.get(key)
        self.by_key[key] = (priority, value)
        if old is not None and old[0] == priority:
            self.buckets[priority][key] = value  # same bucket: keeps its place
            return
        if old is not None:
            self._unbucket(old[0], key)
        bucket = self.buckets.get(priority)
        if bucket is None:
            self.buckets[priority] = {key: value}
        else:
            bucket[key] = value

    def _remove(self, key: K) -> None:
        old = self.by_key.pop(key, None)
        if old is not None:
            self._unbucket(old[0], key)

    def _unbucket(self, priority: P, key: K) -> None:
        bucket = self.buckets[priority]
        del bucket[key]
        if not bucket:
            del self.buckets[priority]

    def _evict(self) -> None:
        if self.capacity is None:
            return
        while len(self.by_key) > self.capacity:
            priority, bucket = self.buckets.peekitem(0)
            key, _ = bucket.popitem()  # the latest arrival
            del self.by_key[key]
            if not bucket:
                del self.buckets[priority]

    # -- snapshots ----------------------------------------------------------------------------

    def _snapshot(self) -> PqSnapshot[P, K, V]:
        entries = [(p, k, v) for p, bucket in self.buckets.items() for k, v in bucket.items()]
        return PqSnapshot(self.version, entries)

    def _restore(self, snapshot: PqSnapshot[P, K, V]) -> None:
        by_key: dict[K, tuple[P, V]] = {}
        buckets: dict[P, dict[K, V]] = {}
        for priority, key, value in snapshot.entries:
            by_key[key] = (priority, value)
            bucket = buckets.get(priority)
            if bucket is None:
                buckets[priority] = {key: value}
            else:
                bucket[key] = value
        self.by_key = by_key
        self.buckets = SortedDict(buckets)
        self.version = snapshot.version


# -- reader and writer ------------------------------------------------------------------------


class PriorityQueueReader(Handle[PriorityQueueMachine[P, K, V]], Generic[P, K, V]):
    """A replicated double-ended priority queue, read-only. Entries are ``(priority, key,
    value)``; ties of priority go by arrival (see ``PriorityQueueMachine``)."""

    __slots__ = ()

    def contains_key(self, key: K) -> bool:
        return key in self._machine.by_key

    def __contains__(self, key: object) -> bool:
        return key in self._machine.by_key

    def get(self, key: K) -> V | None:
        entry = self._machine.by_key.get(key)
        return None if entry is None else entry[1]

    def get_priority(self, key: K) -> P | None:
        entry = self._machine.by_key.get(key)
        return None if entry is None else entry[0]

    def get_min(self) -> tuple[P, K, V] | None:
        """The earliest arrival at the lowest priority."""
        return self._machine.first_of(0)

    def get_max(self) -> tuple[P, K, V] | None:
        """The earliest arrival at the highest priority."""
        return self._machine.first_of(-1)

    def min_priority(self) -> P | None:
        entry = self._machine.first_of(0)
        return None if entry is None else entry[0]

    def max_priority(self) -> P | None:
        entry = self._machine.first_of(-1)
        return None if entry is None else entry[0]

    def iter(self) -> Iterator[tuple[P, K, V]]:
        return self.iter_asc()

    def __iter__(self) -> Iterator[tuple[P, K, V]]:
        return self.iter_asc()

    def iter_asc(self) -> Iterator[tuple[P, K, V]]:
        return iter(list(self._machine.iter_asc()))

    def iter_desc(self) -> Iterator[tuple[P, K, V]]:
        return iter(list(self._machine.iter_desc()))


class PriorityQueueWriter(PriorityQueueReader[P, K, V]):
    """A replicated double-ended priority queue this node can write. With a capacity, an
    insert beyond it evicts the latest arrival at the lowest priority."""

    __slots__ = ()

    async def insert(self, priority: P, key: K, value: V) -> Version:
        """Insert, or replace the priority and value of an existing key."""
        return await self._write(PqInsert(priority, key, value))

    async def extend(self, entries: Iterable[tuple[P, K, V]]) -> Version:
        return await self._write_batch(entries, PqExtend)

    async def update_priority(self, key: K, priority: P) -> Version:
        """Move ``key`` to ``priority`` (a missing key changes nothing)."""
        return await self._write(PqUpdatePriority(key, priority))

    async def update_value(self, key: K, value: V) -> Version:
        """Replace the value of ``key`` (a missing key changes nothing)."""
        return await self._write(PqUpdateValue(key, value))

    async def compare_exchange_value(self, key: K, expected: V, new: V | None) -> Version:
        """Replace the value of ``key`` with ``new`` (remove the entry if None) only if it is
        ``expected`` when the write applies. The version advances either way."""
        return await self._write(PqCompareExchangeValue(key, expected, new))

    async def remove(self, key: K) -> Version:
        return await self._write(PqRemoveKeys([key]))

    async def remove_keys(self, keys: Iterable[K]) -> Version:
        return await self._write_batch(keys, PqRemoveKeys)

    async def remove_range(
        self,
        start: P | None = None,
        end: P | None = None,
        *,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Version:
        """Remove every entry with ``start <= priority < end`` (bounds None: unbounded; the
        flags make either bound inclusive or exclusive). ``remove_range()`` clears."""
        return await self._write(PqRemoveRange(start, end, start_inclusive, end_inclusive))

    async def clear(self) -> Version:
        return await self._write(PqClear())
