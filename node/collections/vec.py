"""The replicated vector: its state machine (``VecMachine``), reader and writer.

Indices are non-negative positions; an operation naming a position outside the vector
(negative, or past the end) changes nothing, on every replica alike. ``insert`` accepts
``len`` (append). Iteration is by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar, Union

import msgspec

from node.collections._handle import Handle
from node.collections._machine import CollectionMachine, Version
from node.primitives.digest import StoreId

T = TypeVar("T")


class VecPushBack(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="push_back"):
    item: T


class VecPushFront(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="push_front"):
    item: T


class VecInsert(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="insert"):
    index: int
    item: T


class VecSwap(msgspec.Struct, frozen=True, array_like=True, tag="swap"):
    a: int
    b: int


class VecExtend(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="extend"):
    items: list[T]


class VecPopBack(msgspec.Struct, frozen=True, array_like=True, tag="pop_back"):
    pass


class VecPopFront(msgspec.Struct, frozen=True, array_like=True, tag="pop_front"):
    pass


class VecRemove(msgspec.Struct, frozen=True, array_like=True, tag="remove"):
    index: int


class VecTruncate(msgspec.Struct, frozen=True, array_like=True, tag="truncate"):
    length: int


class VecClear(msgspec.Struct, frozen=True, array_like=True, tag="clear"):
    pass


class VecSnapshot(msgspec.Struct, Generic[T], frozen=True, array_like=True):
    version: int
    items: list[T]


class VecMachine(CollectionMachine["VecSnapshot[T]"], Generic[T]):
    kind = "vec"

    def __init__(self, store_id: StoreId, item: Any, *, writer: bool = True) -> None:
        self.command_type = Union[  # noqa: UP007 - a runtime union of parametrized generics
            VecPushBack[item],
            VecPushFront[item],
            VecInsert[item],
            VecSwap,
            VecExtend[item],
            VecPopBack,
            VecPopFront,
            VecRemove,
            VecTruncate,
            VecClear,
        ]
        self.snapshot_type = VecSnapshot[item]
        self.items: list[T] = []
        super().__init__(store_id, (item,), writer=writer)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def get(self, index: int) -> T | None:
        return self.items[index] if 0 <= index < len(self.items) else None

    def _apply(self, command: Any) -> None:
        items = self.items
        size = len(items)
        match command:
            case VecPushBack(item=item):
                items.append(item)
            case VecPushFront(item=item):
                items.insert(0, item)
            case VecInsert(index=index, item=item):
                if 0 <= index <= size:
                    items.insert(index, item)
            case VecSwap(a=a, b=b):
                if 0 <= a < size and 0 <= b < size:
                    items[a], items[b] = items[b], items[a]
            case VecExtend(items=more):
                items.extend(more)
            case VecPopBack():
                if items:
                    items.pop()
            case VecPopFront():
                if items:
                    del items[0]
            case VecRemove(index=index):
                if 0 <= index < size:
                    del items[index]
            case VecTruncate(length=length):
                if 0 <= length < size:
                    del items[length:]
            case VecClear():
                items.clear()

    def _snapshot(self) -> VecSnapshot[T]:
        return VecSnapshot(self.version, self.items)

    def _restore(self, snapshot: VecSnapshot[T]) -> None:
        self.items = snapshot.items
        self.version = snapshot.version


# -- reader and writer ------------------------------------------------------------------------


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
