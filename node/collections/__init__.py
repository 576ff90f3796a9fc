"""Replicated collections: Map, Vec, Set, Cell, Once and PriorityQueue on Raft groups.

Each collection is its own group, keyed by its StoreId. The state machines are sans-I/O
cores; handles read them locally and write through the group (writers vote, readers are
learners). Open them with ``net.collections`` (a ``Collections``).
"""

from node.collections._machine import Change, CollectionMachine, Size, Version
from node.collections._replica import GroupOptions
from node.collections._types import type_name
from node.collections.api import Collections
from node.collections.cell import (
    CellMachine,
    CellReader,
    CellWriter,
    OnceMachine,
    OnceReader,
    OnceWriter,
)
from node.collections.errors import (
    CollectionClosed,
    CollectionError,
    InvalidValue,
    StoreConflict,
)
from node.collections.map import MapMachine, MapReader, MapWriter
from node.collections.pqueue import PriorityQueueMachine, PriorityQueueReader, PriorityQueueWriter
from node.collections.set import SetMachine, SetReader, SetWriter
from node.collections.vec import VecMachine, VecReader, VecWriter
from node.tickets import RequireTicket

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
