"""Driving collection machines directly, as the group runtime would (encode, decode, apply)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from node.collections import CollectionMachine
from node.groups.state_machine import ApplyContext
from node.primitives import Digest

STORE = Digest.from_name("test-store")


def apply_all(machine: CollectionMachine[Any], commands: Iterable[Any], start: int = 1) -> int:
    """Apply ``commands`` at consecutive indices from ``start``; return the next index."""
    index = start
    for command in commands:
        machine.apply(machine.check(command), ApplyContext(index, 1))
        index += 1
    return index
