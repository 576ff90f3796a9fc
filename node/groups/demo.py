"""A replicated counter: the state machine ``mosaik node run --counter-group`` runs.

Every member applies the same increments in log order, so every member reports the same value
at the same index; a leader that dies loses no committed increment.
"""

from __future__ import annotations

from typing import Any

import msgspec

from node.groups.state_machine import ApplyContext
from node.primitives import Digest, encode

COUNTER_GROUP = "demo-counter"


class Increment(msgspec.Struct, frozen=True, tag="inc"):
    by: int = 1


class Value(msgspec.Struct, frozen=True, tag="value"):
    """Query: the current value."""


class _CounterState(msgspec.Struct, array_like=True):
    value: int
    increments: int


class Counter:
    """A counter of increments; ``apply`` returns the value after the increment."""

    command_type = Increment
    query_type = Value

    def __init__(self) -> None:
        self.value = 0
        self.increments = 0

    def signature(self) -> Digest:
        return Digest.from_name("mosaik.demo.Counter.v1")

    def apply(self, command: Increment, ctx: ApplyContext) -> int:
        self.value += command.by
        self.increments += 1
        return self.value

    def query(self, query: Value) -> int:
        return self.value

    def snapshot(self) -> bytes:
        return encode(_CounterState(self.value, self.increments))

    def restore(self, data: bytes) -> None:
        state = msgspec.msgpack.decode(data, type=_CounterState)
        self.value, self.increments = state.value, state.increments

    def status(self) -> dict[str, Any]:
        return {"value": self.value, "increments": self.increments}
