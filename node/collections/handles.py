"""Handles of the collections: readers read the local replica, writers also write.

Reads are synchronous and local (possibly behind other nodes; ``when.reaches`` waits for a
version). Iterating returns a copy, so a loop that awaits in between sees a consistent view.
Writes are coroutines returning the ``Version`` they were committed at, after the local
replica applied them. An empty ``extend``/``remove_many`` proposes nothing and returns the
current version.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from node.collections._handle import Handle
from node.collections._machine import Version
from node.collections.cell import (
    CellClear,
    CellCompareExchange,
    CellMachine,
    CellWrite,
    OnceMachine,
)
from node.collections.map import (
    MapClear,
    MapCompareExchange,
    MapExtend,
    MapInsert,
    MapMachine,
    MapRemove,
    MapRemoveMany,
)
from node.collections.pqueue import (
    PqClear,
    PqCompareExchangeValue,
    PqExtend,
    PqInsert,
    PqRemoveKeys,
    PqRemoveRange,
    PqUpdatePriority,
    PqUpdateValue,
    PriorityQueueMachine,
)
from node.collections.set import (
    SetClear,
    SetExtend,
    SetInsert,
    SetMachine,
    SetRemove,
    SetRemoveMany,
)
from node.collections.vec import (
    VecClear,
    VecExtend,
    VecInsert,
    VecMachine,
    VecPopBack,
    VecPopFront,
    VecPushBack,
    VecPushFront,
    VecRemove,
    VecSwap,
    VecTruncate,
)

P = TypeVar("P")
K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


# -- Map --------------------------------------------------------------------------------------


class MapReader(Handle[MapMachine[K, V]], Generic[K, V]):
    """A replicated map, read-only. Iteration is in insertion order (see ``MapMachine``)."""

    __slots__ = ()

    def get(self, key: K, default: V | None = None) -> V | None:
        return self._machine.data.get(key, default)

    def contains_key(self, key: K) -> bool:
        return key in self._machine.data

    def __contains__(self, key: object) -> bool:
        return key in self._machine.data

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._machine.data))

    def iter(self) -> Iterator[tuple[K, V]]:
        return iter(list(self._machine.data.items()))

    def items(self) -> list[tuple[K, V]]:
        return list(self._machine.data.items())

    def keys(self) -> list[K]:
        return list(self._machine.data)

    def values(self) -> list[V]:
        return list(self._machine.data.values())

    def to_dict(self) -> dict[K, V]:
        return dict(self._machine.data)


class MapWriter(MapReader[K, V]):
    """A replicated map this node can write."""

    __slots__ = ()

    async def insert(self, key: K, value: V) -> Version:
        """Set ``key`` to ``value`` (a new key goes last in iteration order)."""
        return await self._write(MapInsert(key, value))

    async def compare_exchange(self, key: K, expected: V | None, new: V | None) -> Version:
        """Set ``key`` to ``new`` (remove it if None) only if its value is ``expected`` (absent
        if None) when the write applies. The version advances either way."""
        return await self._write(MapCompareExchange(key, expected, new))

    async def extend(self, entries: Iterable[tuple[K, V]]) -> Version:
        return await self._write_batch(entries, MapExtend)

    async def remove(self, key: K) -> Version:
        """Remove ``key`` (a missing key changes nothing)."""
        return await self._write(MapRemove(key))

    async def remove_many(self, keys: Iterable[K]) -> Version:
        return await self._write_batch(keys, MapRemoveMany)

    async def clear(self) -> Version:
        return await self._write(MapClear())


# -- Vec --------------------------------------------------------------------------------------


class VecReader(Handle[VecMachine[T]], Generic[T]):
    """A replicated vector, read-only. Positions outside the vector read as None."""

    __slots__ = ()

    def get(self, index: int) -> T | None:
        return self._machine.get(index)

    def front(self) -> T | None:
        return self._machine.get(0)

    def back(self) -> T | None:
        return self._machine.get(len(self._machine) - 1)

    def contains(self, item: T) -> bool:
        return item in self._machine.items

    def __contains__(self, item: object) -> bool:
        return item in self._machine.items

    def index_of(self, item: T) -> int | None:
        """The first position holding ``item``, or None."""
        try:
            return self._machine.items.index(item)
        except ValueError:
            return None

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._machine.items))

    def iter(self) -> Iterator[T]:
        return iter(list(self._machine.items))

    def to_list(self) -> list[T]:
        return list(self._machine.items)


class VecWriter(VecReader[T]):
    """A replicated vector this node can write. A position outside the vector (negative, or
    past the end) makes the write a no-op on every replica; the version still advances."""

    __slots__ = ()

    async def push_back(self, item: T) -> Version:
        return await self._write(VecPushBack(item))

    async def push_front(self, item: T) -> Version:
        return await self._write(VecPushFront(item))

    async def insert(self, index: int, item: T) -> Version:
        """Insert before position ``index`` (``index == len`` appends)."""
        return await self._write(VecInsert(index, item))

    async def swap(self, a: int, b: int) -> Version:
        return await self._write(VecSwap(a, b))

    async def extend(self, items: Iterable[T]) -> Version:
        return await self._write_batch(items, VecExtend)

    async def pop_back(self) -> Version:
        return await self._write(VecPopBack())

    async def pop_front(self) -> Version:
        return await self._write(VecPopFront())

    async def remove(self, index: int) -> Version:
        return await self._write(VecRemove(index))

    async def truncate(self, length: int) -> Version:
        """Keep the first ``length`` items."""
        return await self._write(VecTruncate(length))

    async def clear(self) -> Version:
        return await self._write(VecClear())


# -- Set --------------------------------------------------------------------------------------


class SetReader(Handle[SetMachine[T]], Generic[T]):
    """A replicated set, read-only. Iteration is in insertion order (see ``SetMachine``)."""

    __slots__ = ()

    def contains(self, item: T) -> bool:
        return item in self._machine

    def __contains__(self, item: object) -> bool:
        return item in self._machine

    def is_subset(self, other: SetReader[T] | Iterable[T]) -> bool:
        """Whether every item of this set is in ``other`` (another set's handle or items)."""
        if isinstance(other, SetReader):
            return self._machine.is_subset(other._machine)
        return self._machine.is_subset(other)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._machine))

    def iter(self) -> Iterator[T]:
        return iter(list(self._machine))

    def to_set(self) -> set[T]:
        return set(self._machine)


class SetWriter(SetReader[T]):
    """A replicated set this node can write."""

    __slots__ = ()

    async def insert(self, item: T) -> Version:
        return await self._write(SetInsert(item))

    async def extend(self, items: Iterable[T]) -> Version:
        return await self._write_batch(items, SetExtend)

    async def remove(self, item: T) -> Version:
        """Remove ``item`` (a missing item changes nothing)."""
        return await self._write(SetRemove(item))

    async def remove_many(self, items: Iterable[T]) -> Version:
        return await self._write_batch(items, SetRemoveMany)

    async def clear(self) -> Version:
        return await self._write(SetClear())


# -- Cell and Once --------------------------------------------------------------------------------


class CellReader(Handle[CellMachine[T]], Generic[T]):
    """A replicated single value, read-only; None while empty."""

    __slots__ = ()

    def read(self) -> T | None:
        return self._machine.value

    def is_some(self) -> bool:
        return self._machine.value is not None

    def is_none(self) -> bool:
        return self._machine.value is None


class CellWriter(CellReader[T]):
    """A replicated single value this node can write."""

    __slots__ = ()

    async def write(self, value: T) -> Version:
        return await self._write(CellWrite(value))

    async def compare_exchange(self, expected: T | None, new: T | None) -> Version:
        """Hold ``new`` (empty if None) only if the cell holds ``expected`` (is empty if None)
        when the write applies. The version advances either way."""
        return await self._write(CellCompareExchange(expected, new))

    async def clear(self) -> Version:
        return await self._write(CellClear())


class OnceReader(Handle[OnceMachine[T]], Generic[T]):
    """A replicated write-once value, read-only; None until the first write is applied."""

    __slots__ = ()

    def read(self) -> T | None:
        return self._machine.value

    def is_some(self) -> bool:
        return self._machine.value is not None

    def is_none(self) -> bool:
        return self._machine.value is None

    async def await_value(self) -> T:
        """The value, once the local replica has one."""
        while (value := self._machine.value) is None:
            await self.when.updated()
        return value


class OnceWriter(OnceReader[T]):
    """A replicated write-once value this node can write."""

    __slots__ = ()

    async def write(self, value: T) -> Version:
        """Propose ``value``; only the first write committed to the group takes effect, later
        ones change nothing (their version still advances)."""
        return await self._write(CellWrite(value))


# -- PriorityQueue --------------------------------------------------------------------------------


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
