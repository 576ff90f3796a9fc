"""Random command sequences: two replicas, a replica restored mid-way from a snapshot and a
plain-Python reference model must agree on contents, iteration order and snapshot bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from node.collections import (
    CellMachine,
    MapMachine,
    OnceMachine,
    PriorityQueueMachine,
    SetMachine,
    VecMachine,
)
from node.collections.cell import CellClear, CellCompareExchange, CellWrite
from node.collections.map import (
    MapClear,
    MapCompareExchange,
    MapExtend,
    MapInsert,
    MapRemove,
    MapRemoveMany,
)
from node.collections.pqueue import (
    PqClear,
    PqCompareExchangeValue,
    PqExtend,
    PqInsert,
    PqRemoveKeys,
    PqRemoveRange,
    PqUpdatePriority,
    PqUpdateValue,
)
from node.collections.set import SetClear, SetExtend, SetInsert, SetRemove, SetRemoveMany
from node.collections.vec import (
    VecClear,
    VecExtend,
    VecInsert,
    VecPopBack,
    VecPopFront,
    VecPushBack,
    VecPushFront,
    VecRemove,
    VecSwap,
    VecTruncate,
)

from .helpers import STORE, apply_all

SETTINGS = settings(max_examples=60, deadline=None)

keys = st.sampled_from("abcdef")
small = st.integers(0, 3)
maybe_small = st.none() | small
index = st.integers(-2, 8)


def check_replicas(make: Callable[[], Any], commands: list[Any], cut: int, view) -> Any:
    """Apply ``commands`` to two replicas and to a third restored from the first after
    ``cut`` commands; return the common view."""
    cut = min(cut, len(commands))
    a, b, late = make(), make(), make()
    apply_all(a, commands[:cut])
    late.restore(a.snapshot())
    apply_all(a, commands[cut:], start=cut + 1)
    apply_all(b, commands)
    apply_all(late, commands[cut:], start=cut + 1)
    assert a.snapshot() == b.snapshot() == late.snapshot()
    assert view(a) == view(b) == view(late)
    assert a.version == b.version == late.version == len(commands)
    return view(a)


# -- Map ----------------------------------------------------------------------------------------

map_commands = st.one_of(
    st.builds(MapInsert, keys, small),
    st.builds(MapCompareExchange, keys, maybe_small, maybe_small),
    st.builds(MapExtend, st.lists(st.tuples(keys, small), max_size=4)),
    st.builds(MapRemove, keys),
    st.builds(MapRemoveMany, st.lists(keys, max_size=3)),
    st.just(MapClear()),
)


def map_model(commands: list[Any]) -> list[tuple[str, int]]:
    pairs: list[list[Any]] = []

    def find(key: str) -> list[Any] | None:
        return next((p for p in pairs if p[0] == key), None)

    def put(key: str, value: int) -> None:
        if (pair := find(key)) is not None:
            pair[1] = value
        else:
            pairs.append([key, value])

    def drop(key: str) -> None:
        if (pair := find(key)) is not None:
            pairs.remove(pair)

    for c in commands:
        if isinstance(c, MapInsert):
            put(c.key, c.value)
        elif isinstance(c, MapCompareExchange):
            pair = find(c.key)
            if (pair[1] if pair else None) == c.expected:
                if c.new is None:
                    drop(c.key)
                else:
                    put(c.key, c.new)
        elif isinstance(c, MapExtend):
            for key, value in c.entries:
                put(key, value)
        elif isinstance(c, MapRemove):
            drop(c.key)
        elif isinstance(c, MapRemoveMany):
            for key in c.keys:
                drop(key)
        else:
            pairs.clear()
    return [(k, v) for k, v in pairs]


@SETTINGS
@given(st.lists(map_commands, max_size=40), st.integers(0, 40))
def test_map_replicas_agree_with_the_model(commands, cut) -> None:
    got = check_replicas(
        lambda: MapMachine(STORE, str, int), commands, cut, lambda m: list(m.data.items())
    )
    assert got == map_model(commands)


# -- Vec ----------------------------------------------------------------------------------------

vec_commands = st.one_of(
    st.builds(VecPushBack, small),
    st.builds(VecPushFront, small),
    st.builds(VecInsert, index, small),
    st.builds(VecSwap, index, index),
    st.builds(VecExtend, st.lists(small, max_size=4)),
    st.just(VecPopBack()),
    st.just(VecPopFront()),
    st.builds(VecRemove, index),
    st.builds(VecTruncate, index),
    st.just(VecClear()),
)


def vec_model(commands: list[Any]) -> list[int]:
    items: list[int] = []
    for c in commands:
        n = len(items)
        if isinstance(c, VecPushBack):
            items = [*items, c.item]
        elif isinstance(c, VecPushFront):
            items = [c.item, *items]
        elif isinstance(c, VecInsert):
            if 0 <= c.index <= n:
                items = [*items[: c.index], c.item, *items[c.index :]]
        elif isinstance(c, VecSwap):
            if 0 <= c.a < n and 0 <= c.b < n:
                items[c.a], items[c.b] = items[c.b], items[c.a]
        elif isinstance(c, VecExtend):
            items = items + list(c.items)
        elif isinstance(c, VecPopBack):
            items = items[:-1]
        elif isinstance(c, VecPopFront):
            items = items[1:]
        elif isinstance(c, VecRemove):
            if 0 <= c.index < n:
                items = items[: c.index] + items[c.index + 1 :]
        elif isinstance(c, VecTruncate):
            if c.length >= 0:
                items = items[: c.length]
        else:
            items = []
    return items


@SETTINGS
@given(st.lists(vec_commands, max_size=40), st.integers(0, 40))
def test_vec_replicas_agree_with_the_model(commands, cut) -> None:
    got = check_replicas(lambda: VecMachine(STORE, int), commands, cut, lambda v: list(v.items))
    assert got == vec_model(commands)


# -- Set ----------------------------------------------------------------------------------------

set_commands = st.one_of(
    st.builds(SetInsert, keys),
    st.builds(SetExtend, st.lists(keys, max_size=4)),
    st.builds(SetRemove, keys),
    st.builds(SetRemoveMany, st.lists(keys, max_size=3)),
    st.just(SetClear()),
)


def set_model(commands: list[Any]) -> list[str]:
    items: list[str] = []
    for c in commands:
        if isinstance(c, SetInsert | SetExtend):
            for item in [c.item] if isinstance(c, SetInsert) else c.items:
                if item not in items:
                    items.append(item)
        elif isinstance(c, SetRemove | SetRemoveMany):
            for item in [c.item] if isinstance(c, SetRemove) else c.items:
                if item in items:
                    items.remove(item)
        else:
            items = []
    return items


@SETTINGS
@given(st.lists(set_commands, max_size=40), st.integers(0, 40))
def test_set_replicas_agree_with_the_model(commands, cut) -> None:
    got = check_replicas(lambda: SetMachine(STORE, str), commands, cut, list)
    assert got == set_model(commands)


# -- Cell and Once ------------------------------------------------------------------------------

cell_commands = st.one_of(
    st.builds(CellWrite, small),
    st.builds(CellCompareExchange, maybe_small, maybe_small),
    st.just(CellClear()),
)


def cell_model(commands: list[Any]) -> int | None:
    value = None
    for c in commands:
        if isinstance(c, CellWrite):
            value = c.value
        elif isinstance(c, CellCompareExchange):
            if value == c.expected:
                value = c.new
        else:
            value = None
    return value


@SETTINGS
@given(st.lists(cell_commands, max_size=30), st.integers(0, 30))
def test_cell_replicas_agree_with_the_model(commands, cut) -> None:
    got = check_replicas(lambda: CellMachine(STORE, int), commands, cut, lambda c: c.value)
    assert got == cell_model(commands)


@SETTINGS
@given(st.lists(st.builds(CellWrite, small), max_size=10), st.integers(0, 10))
def test_once_replicas_agree_with_the_model(commands, cut) -> None:
    got = check_replicas(lambda: OnceMachine(STORE, int), commands, cut, lambda c: c.value)
    assert got == (commands[0].value if commands else None)


# -- PriorityQueue --------------------------------------------------------------------------------

priorities = st.integers(0, 4)
pq_commands = st.one_of(
    st.builds(PqInsert, priorities, keys, small),
    st.builds(PqExtend, st.lists(st.tuples(priorities, keys, small), max_size=4)),
    st.builds(PqUpdatePriority, keys, priorities),
    st.builds(PqUpdateValue, keys, small),
    st.builds(PqCompareExchangeValue, keys, small, maybe_small),
    st.builds(PqRemoveKeys, st.lists(keys, max_size=3)),
    st.builds(
        PqRemoveRange, st.none() | priorities, st.none() | priorities, st.booleans(), st.booleans()
    ),
    st.just(PqClear()),
)


def pq_model(commands: list[Any], capacity: int | None) -> list[tuple[int, str, int]]:
    # entries: key -> [priority, value, arrival]
    entries: dict[str, list[int]] = {}
    clock = 0

    def put(priority: int, key: str, value: int) -> None:
        nonlocal clock
        old = entries.get(key)
        if old is not None and old[0] == priority:
            old[1] = value
        else:
            clock += 1
            entries[key] = [priority, value, clock]

    def evict() -> None:
        while capacity is not None and len(entries) > capacity:
            lowest = min(e[0] for e in entries.values())
            victim = max(
                (k for k, e in entries.items() if e[0] == lowest), key=lambda k: entries[k][2]
            )
            del entries[victim]

    def in_range(p: int, c: PqRemoveRange) -> bool:
        above = c.start is None or (p >= c.start if c.start_inclusive else p > c.start)
        below = c.end is None or (p <= c.end if c.end_inclusive else p < c.end)
        return above and below

    for c in commands:
        if isinstance(c, PqInsert):
            put(c.priority, c.key, c.value)
            evict()
        elif isinstance(c, PqExtend):
            for priority, key, value in c.entries:
                put(priority, key, value)
                evict()
        elif isinstance(c, PqUpdatePriority):
            if c.key in entries:
                put(c.priority, c.key, entries[c.key][1])
        elif isinstance(c, PqUpdateValue):
            if c.key in entries:
                entries[c.key][1] = c.value
        elif isinstance(c, PqCompareExchangeValue):
            if c.key in entries and entries[c.key][1] == c.expected:
                if c.new is None:
                    del entries[c.key]
                else:
                    entries[c.key][1] = c.new
        elif isinstance(c, PqRemoveKeys):
            for key in c.keys:
                entries.pop(key, None)
        elif isinstance(c, PqRemoveRange):
            for key in [k for k, e in entries.items() if in_range(e[0], c)]:
                del entries[key]
        else:
            entries.clear()
    ordered = sorted(entries.items(), key=lambda kv: (kv[1][0], kv[1][2]))
    return [(e[0], k, e[1]) for k, e in ordered]


def check_priority_queue(commands: list[Any], cut: int, capacity: int | None) -> None:
    def view(q: PriorityQueueMachine) -> tuple[list[Any], list[Any], Any, Any]:
        return list(q.iter_asc()), list(q.iter_desc()), q.first_of(0), q.first_of(-1)

    make = lambda: PriorityQueueMachine(STORE, int, str, int, capacity=capacity)  # noqa: E731
    asc, desc, lowest, highest = check_replicas(make, commands, cut, view)
    expected = pq_model(commands, capacity)
    assert asc == expected
    by_priority_desc = sorted(expected, key=lambda e: -e[0])  # stable: arrival order kept
    assert desc == by_priority_desc
    assert lowest == (expected[0] if expected else None)
    assert highest == (by_priority_desc[0] if expected else None)


@settings(max_examples=100, deadline=None)
@given(st.lists(pq_commands, max_size=40), st.integers(0, 40))
def test_priority_queue_replicas_agree_with_the_model(commands, cut) -> None:
    check_priority_queue(commands, cut, None)


@settings(max_examples=100, deadline=None)
@given(st.lists(pq_commands, max_size=40), st.integers(0, 40), st.integers(1, 4))
def test_bounded_priority_queue_replicas_agree_with_the_model(commands, cut, capacity) -> None:
    check_priority_queue(commands, cut, capacity)
