"""The replicated single-value cells, each a state machine with its reader and writer:
``Cell`` (every write replaces) and ``Once`` (the first committed write stays, later ones
change nothing). Both hold one value and share its snapshot and write command, so they live
here together.

An empty cell reads as None, so the value type should not itself admit None.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, Union

import msgspec

from node.collections._handle import Handle
from node.collections._machine import CollectionMachine, Version
from node.primitives.digest import StoreId

T = TypeVar("T")


class CellWrite(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="write"):
    value: T


class CellCompareExchange(msgspec.Struct, Generic[T], frozen=True, array_like=True, tag="cas"):
    """Hold ``new`` (empty if None) when the cell holds ``expected`` (is empty if None)."""

    expected: T | None
    new: T | None


class CellClear(msgspec.Struct, frozen=True, array_like=True, tag="clear"):
    pass


class CellSnapshot(msgspec.Struct, Generic[T], frozen=True, array_like=True):
    version: int
    value: T | None


class _ValueMachine(CollectionMachine["CellSnapshot[T]"], Generic[T]):
    def __init__(self, store_id: StoreId, value: Any, command_type: Any, *, writer: bool) -> None:
        self.command_type = command_type
        self.snapshot_type = CellSnapshot[value]
        self.value: T | None = None
        super().__init__(store_id, (value,), writer=writer)

    def __len__(self) -> int:
        return 0 if self.value is None else 1

    def _snapshot(self) -> CellSnapshot[T]:
        return CellSnapshot(self.version, self.value)

    def _restore(self, snapshot: CellSnapshot[T]) -> None:
        self.value = snapshot.value
        self.version = snapshot.version


class CellMachine(_ValueMachine[T]):
    kind = "cell"

    def __init__(self, store_id: StoreId, value: Any, *, writer: bool = True) -> None:
        command_type = Union[  # noqa: UP007 - a runtime union of parametrized generics
            CellWrite[value],
            CellCompareExchange[value],
            CellClear,
        ]
        super().__init__(store_id, value, command_type, writer=writer)

    def _apply(self, command: Any) -> None:
        match command:
            case CellWrite(value=value):
                self.value = value
            case CellCompareExchange(expected=expected, new=new):
                if self.value == expected:
                    self.value = new
            case CellClear():
                self.value = None


class OnceMachine(_ValueMachine[T]):
    kind = "once"

    def __init__(self, store_id: StoreId, value: Any, *, writer: bool = True) -> None:
        super().__init__(store_id, value, CellWrite[value], writer=writer)

    def _apply(self, command: Any) -> None:
        if self.value is None:
            self.value = command.value


# -- reader and writer ------------------------------------------------------------------------


class _ValueReader(Handle[CellMachine[T] | OnceMachine[T]], Generic[T]):
    """What Cell and Once readers share: the value held, None while empty."""

    __slots__ = ()

    def read(self) -> T | None:
        return self._machine.value

    def is_some(self) -> bool:
        return self._machine.value is not None

    def is_none(self) -> bool:
        return self._machine.value is None


class CellReader(_ValueReader[T]):
    """A replicated single value, read-only; None while empty."""

    __slots__ = ()


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


class OnceReader(_ValueReader[T]):
    """A replicated write-once value, read-only; None until the first write is applied."""

    __slots__ = ()

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
