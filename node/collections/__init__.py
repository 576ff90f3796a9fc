"""Replicated collections: Map, Vec, Set, Cell, Once and PriorityQueue on Raft groups.

Each collection is its own group, keyed by its StoreId. The state machines are sans-I/O
cores; handles read them locally and write through the group (writers vote, readers are
learners). Open them with ``net.collections`` (a ``Collections``).

The state machines load eagerly; ``Collections``, the handles and ``GroupOptions`` (the asyncio
shell) resolve on first use, so importing a state machine does not start asyncio.
"""

import typing

from node._lazy import lazy as _lazy
from node.collections._machine import Change, CollectionMachine, Size, Version
from node.collections._types import type_name
from node.collections.cell import CellMachine, OnceMachine
from node.collections.errors import (
    CollectionClosed,
    CollectionError,
    InvalidValue,
    StoreConflict,
)
from node.collections.map import MapMachine
from node.collections.pqueue import PriorityQueueMachine
from node.collections.set import SetMachine
from node.collections.vec import VecMachine
from node.tickets.validation import RequireTicket

if typing.TYPE_CHECKING:
    from node.collections._replica import GroupOptions
    from node.collections.api import Collections
    from node.collections.handles import (
        CellReader,
        CellWriter,
        MapReader,
        MapWriter,
        OnceReader,
        OnceWriter,
        PriorityQueueReader,
        PriorityQueueWriter,
        SetReader,
        SetWriter,
        VecReader,
        VecWriter,
    )
else:
    __getattr__, __dir__ = _lazy(
        __name__,
        {
            "node.collections._replica": ("GroupOptions",),
            "node.collections.api": ("Collections",),
            "node.collections.handles": (
                "CellReader",
                "CellWriter",
                "MapReader",
                "MapWriter",
                "OnceReader",
                "OnceWriter",
                "PriorityQueueReader",
                "PriorityQueueWriter",
                "SetReader",
                "SetWriter",
                "VecReader",
                "VecWriter",
            ),
        },
    )

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
