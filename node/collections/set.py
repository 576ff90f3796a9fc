"""The replicated set: its state machine (``SetMachine``), reader and writer.

Iteration order is insertion order (an item inserted again keeps its place; removed and
inserted again, it moves to the end), held in a dict so it never depends on ``hash()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar, Union

import msgspec

from node.collections._handle import Handle
from node.collections._machine import CollectionMachine, Version
from node.collections._types import check_hashable_type
from node.primitives.digest import StoreId

T = TypeVar("T")


class SetInsert(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="insert"):
    item: T


class SetExtend(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="extend"):
    items: list[T]


class SetRemove(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="remove"):
    item: T


class SetRemoveMany(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="remove_many"):
    items: list[T]


class SetClear(msgspec.Struct, frozen=True, array_like=True, tag="clear"):
    pass


class SetSnapshot(msgspec.Struct, Generic[T], frozen=True, array_like=True):
    version: int
    items: list[T]


class SetMachine(CollectionMachine["SetSnapshot[T]"], Generic[T]):
    kind = "set"

    def __init__(self, store_id: StoreId, item: Any, *, writer: bool = True) -> None:
        check_hashable_type(item, "item")
        self.command_type = Union[  # noqa: UP007 - a runtime union of parametrized generics
            SetInsert[item],
            SetExtend[item],
            SetRemove[item],
            SetRemoveMany[item],
            SetClear,
        ]
        self.snapshot_type = SetSnapshot[item]
        self.items: dict[T, None] = {}
        super().__init__(store_id, (item,), writer=writer)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __contains__(self, item: object) -> bool:
        return item in self.items

    def is_subset(self, other: Iterable[T]) -> bool:
        superset = other if isinstance(other, SetMachine | set | frozenset | dict) else set(other)
        return all(item in superset for item in self.items)

    def _apply(self, command: Any) -> None:
        items = self.items
        match command:
            case SetInsert(item=item):
                items[item] = None
            case SetExtend(items=more):
                items.update(dict.fromkeys(more))
            case SetRemove(item=item):
                items.pop(item, None)
            case SetRemoveMany(items=gone):
                for item in gone:
                    items.pop(item, None)
            case SetClear():
                items.clear()

    def _snapshot(self) -> SetSnapshot[T]:
        return SetSnapshot(self.version, list(self.items))

    def _restore(self, snapshot: SetSnapshot[T]) -> None:
        self.items = dict.fromkeys(snapshot.items)
        self.version = snapshot.version


# -- reader and writer ------------------------------------------------------------------------


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
