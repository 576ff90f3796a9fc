"""The exported names are a contract."""

from __future__ import annotations

import msgspec

import node.collections
from node.collections import CollectionError, Collections, type_name
from node.errors import MosaikError

EXPECTED = {
    "CellMachine", "CellReader", "CellWriter", "Change", "CollectionClosed", "CollectionError",
    "CollectionMachine", "Collections", "GroupOptions", "InvalidValue", "MapMachine",
    "MapReader", "MapWriter",
    "OnceMachine", "OnceReader", "OnceWriter", "PriorityQueueMachine", "PriorityQueueReader",
    "PriorityQueueWriter", "RequireTicket", "SetMachine", "SetReader", "SetWriter", "Size",
    "StoreConflict", "VecMachine", "VecReader", "VecWriter", "Version", "type_name",
}  # fmt: skip

# each kind opens as a writer (``map``) or a reader (``map_reader``)
OPENERS = {
    "map", "map_reader", "vec", "vec_reader", "set", "set_reader", "cell", "cell_reader",
    "once", "once_reader", "priority_queue", "priority_queue_reader",
}  # fmt: skip


def test_exported_names_are_pinned() -> None:
    assert set(node.collections.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(node.collections, name) is not None
    assert issubclass(CollectionError, MosaikError)


def test_collections_methods_are_pinned() -> None:
    public = {name for name in vars(Collections) if not name.startswith("_")}
    assert public == OPENERS | {"statistics", "close"}


class Inner(msgspec.Struct, frozen=True):
    n: int


class Outer(msgspec.Struct, frozen=True):
    tags: list[str]
    inner: Inner | None
    nested: Outer | None = None


def test_type_names_are_structural_and_module_independent() -> None:
    assert type_name(str) == "str"
    assert type_name(tuple[int, ...]) == "tuple[int, ...]"
    assert type_name(dict[str, list[int]]) == "dict[str, list[int]]"
    assert type_name(int | None) == "int | None"
    assert type_name(Outer) == (
        "Outer{tags: list[str], inner: Inner{n: int} | None, nested: Outer | None}"
    )

    class Inner2(msgspec.Struct, frozen=True):
        n: str

    Inner2.__qualname__ = "Inner"
    assert type_name(Inner2) != type_name(Inner)  # same name, other fields: other group
