"""The replicated set's state machine.

Iteration order is insertion order (an item inserted again keeps its place; removed and
inserted again, it moves to the end), held in a dict so it never depends on ``hash()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar, Union

import msgspec

from node.collections._machine import CollectionMachine
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
