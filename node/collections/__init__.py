"""Replicated collections: Map, Vec, Set, Cell, Once and PriorityQueue on Raft groups.

Each collection is its own group, keyed by its StoreId. The state machines here are sans-I/O
cores; handles (writers vote, readers are learners) read them locally and write through the
group.
"""

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

__all__ = [
    "CellMachine",
    "Change",
    "CollectionClosed",
    "CollectionError",
    "CollectionMachine",
    "InvalidValue",
    "MapMachine",
    "OnceMachine",
    "PriorityQueueMachine",
    "SetMachine",
    "Size",
    "StoreConflict",
    "VecMachine",
    "Version",
    "type_name",
]
