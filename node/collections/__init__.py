"""Replicated collections: Map, Vec, Set, Cell, Once and PriorityQueue on Raft groups.

Each collection is its own group, keyed by its StoreId. The state machines are sans-I/O
cores; handles read them locally and write through the group (writers vote, readers are
learners). Open them with ``net.collections`` (a ``Collections``).

Each kind's module holds its machine, reader and writer, and the handles need the asyncio
shell: every kind, ``Collections`` and ``GroupOptions`` resolve on first use, so importing
``node.collections._machine`` does not start asyncio.
"""

import typing

from node._lazy import lazy as _lazy
from node.collections._machine import Change, CollectionMachine, Size, Version
from node.collections._types import type_name
from node.collections.errors import (
    CollectionClosed,
    CollectionError,
    InvalidValue,
    StoreConflict,
)
from node.tickets.validation import RequireTicket

_LAZY: dict[str, tuple[str, ...]] = {
    "node.collections._replica": ("GroupOptions",),
    "node.collections.api": ("Collections",),
    "node.collections.cell": (
        "CellMachine",
        "CellReader",
        "CellWriter",
        "OnceMachine",
        "OnceReader",
        "OnceWriter",
    ),
    "node.collections.map": ("MapMachine", "MapReader", "MapWriter"),
    "node.collections.pqueue": (
        "PriorityQueueMachine",
        "PriorityQueueReader",
        "PriorityQueueWriter",
    ),
    "node.collections.set": ("SetMachine", "SetReader", "SetWriter"),
    "node.collections.vec": ("VecMachine", "VecReader", "VecWriter"),
}

if typing.TYPE_CHECKING:
    from node.collections._replica import GroupOptions
    from node.collections.api import Collections
    from node.collections.cell import (
        CellMachine,
        CellReader,
        CellWriter,
        OnceMachine,
        OnceReader,
        OnceWriter,
    )
    from node.collections.map import MapMachine, MapReader, MapWriter
    from node.collections.pqueue import (
        PriorityQueueMachine,
        PriorityQueueReader,
        PriorityQueueWriter,
    )
    from node.collections.set import SetMachine, SetReader, SetWriter
    from node.collections.vec import VecMachine, VecReader, VecWriter
else:
    __getattr__, __dir__ = _lazy(__name__, _LAZY)

__all__ = [
    "CellMachine",
    "CellReader",
    "CellWriter",
    "Change",
    "CollectionClosed",
    "CollectionError",
    "CollectionMachine",
    "Collections",
    "GroupOptions",
    "InvalidValue",
    "MapMachine",
    "MapReader",
    "MapWriter",
    "OnceMachine",
    "OnceReader",
    "OnceWriter",
    "PriorityQueueMachine",
    "PriorityQueueReader",
    "PriorityQueueWriter",
    "RequireTicket",
    "SetMachine",
    "SetReader",
    "SetWriter",
    "Size",
    "StoreConflict",
    "VecMachine",
    "VecReader",
    "VecWriter",
    "Version",
    "type_name",
]
