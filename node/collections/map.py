"""The replicated map: its state machine (``MapMachine``), reader and writer.

Iteration order is insertion order: a key takes its place when first inserted, keeps it when
its value is replaced, and moves to the end when removed and inserted again. Replicas that
applied the same log therefore iterate identically, and snapshots (entries in that order)
are byte-identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar, Union

import msgspec

from node.collections._handle import Handle
from node.collections._machine import CollectionMachine, Version
from node.collections._types import check_hashable_type
from node.primitives.digest import StoreId

K = TypeVar("K")
V = TypeVar("V")


class MapInsert(msgspec.Struct, Generic[K, V], frozen=True, array_like=True, tag="insert"):
    key: K
    value: V


class MapCompareExchange(msgspec.Struct, Generic[K, V], frozen=True, array_like=True, tag="cas"):
    """Set ``key`` to ``new`` (remove it if None) when its value equals ``expected`` (absent
    if None); otherwise change nothing."""

    key: K
    expected: V | None
    new: V | None


class MapExtend(msgspec.Struct, Generic[K, V], frozen=True, array_like=True, tag="extend"):
    entries: list[tuple[K, V]]


class MapRemove(msgspec.Struct, Generic[K], frozen=True, array_like=True, tag="remove"):
    key: K


class MapRemoveMany(msgspec.Struct, Generic[K], frozen=True, array_like=True, tag="remove_many"):
    keys: list[K]


class MapClear(msgspec.Struct, frozen=True, array_like=True, tag="clear"):
    pass


class MapSnapshot(msgspec.Struct, Generic[K, V], frozen=True, array_like=True):
    version: int
    keys: list[K]
    values: list[V]


class MapMachine(CollectionMachine["MapSnapshot[K, V]"], Generic[K, V]):
    kind = "map"

    def __init__(self, store_id: StoreId, key: Any, value: Any, *, writer: bool = True) -> None:
        check_hashable_type(key, "key")
        self.command_type = Union[  # noqa: UP007 - a runtime union of parametrized generics
            MapInsert[key, value],
            MapCompareExchange[key, value],
            MapExtend[key, value],
            MapRemove[key],
            MapRemoveMany[key],
            MapClear,
        ]
        self.snapshot_type = MapSnapshot[key, value]
        self.data: dict[K, V] = {}
        super().__init__(store_id, (key, value), writer=writer)

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[K]:
        return iter(self.data)

    def _apply(self, command: Any) -> None:
        data = self.data
        match command:
            case MapInsert(key=key, value=value):
                data[key] = value
            case MapCompareExchange(key=key, expected=expected, new=new):
                if data.get(key) == expected and (expected is not None or key not in data):
                    if new is None:
                        data.pop(key, None)
                    else:
                        data[key] = new
            case MapExtend(entries=entries):
                data.update(entries)
            case MapRemove(key=key):
                data.pop(key, None)
            case MapRemoveMany(keys=keys):
                for key in keys:
                    data.pop(key, None)
            case MapClear():
                data.clear()

    def _snapshot(self) -> MapSnapshot[K, V]:
        return MapSnapshot(self.version, list(self.data), list(self.data.values()))

    def _restore(self, snapshot: MapSnapshot[K, V]) -> None:
        self.data = dict(zip(snapshot.keys, snapshot.values, strict=True))
        self.version = snapshot.version


# -- reader and writer ------------------------------------------------------------------------


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
