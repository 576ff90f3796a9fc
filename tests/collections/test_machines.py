"""Each collection machine: the whole surface, edge cases, compare-exchange, snapshots."""

from __future__ import annotations

import time

import msgspec
import pytest

from node.collections import (
    CellMachine,
    Change,
    InvalidValue,
    MapMachine,
    OnceMachine,
    PriorityQueueMachine,
    SetMachine,
    Size,
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
from node.errors import ConfigError, DecodeError
from node.groups.raft.config import LeadershipPreference
from node.groups.state_machine import ApplyContext, StateMachine
from node.primitives import Digest

from .helpers import STORE, apply_all


def roundtrip(machine, fresh):
    """Restore ``fresh`` from ``machine``'s snapshot; both must then snapshot identically."""
    data = machine.snapshot()
    fresh.restore(data)
    assert fresh.snapshot() == data
    assert fresh.version == machine.version
    return fresh


# -- Map --------------------------------------------------------------------------------------


def test_map_surface_and_insertion_order() -> None:
    m = MapMachine(STORE, str, int)
    assert isinstance(m, StateMachine)
    apply_all(
        m,
        [
            MapInsert("b", 1),
            MapInsert("a", 2),
            MapExtend([("c", 3), ("b", 10)]),  # b keeps its place
            MapRemove("missing"),
            MapRemove("a"),
            MapInsert("a", 4),  # a moves to the end
        ],
    )
    assert list(m.data.items()) == [("b", 10), ("c", 3), ("a", 4)]
    assert m.version == 6
    assert m.query(Size()) == 3
    apply_all(m, [MapRemoveMany(["b", "zz", "c"])], start=7)
    assert m.data == {"a": 4}
    apply_all(m, [MapClear(), MapInsert("x", 1), MapInsert("y", 2)], start=8)  # clear, rebuild
    assert list(m.data.items()) == [("x", 1), ("y", 2)]
    assert roundtrip(m, MapMachine(STORE, str, int)).data == m.data


def test_map_compare_exchange_variants() -> None:
    m = MapMachine(STORE, str, int)
    apply_all(
        m,
        [
            MapCompareExchange("k", None, 1),  # absent -> insert
            MapCompareExchange("k", None, 2),  # present: expected absent fails
            MapCompareExchange("k", 5, 2),  # wrong expectation fails
            MapCompareExchange("k", 1, 3),  # swap
            MapCompareExchange("gone", 3, 9),  # missing key with a value expectation fails
        ],
    )
    assert m.data == {"k": 3}
    apply_all(m, [MapCompareExchange("k", 3, None)], start=6)  # remove on match
    assert m.data == {}
    assert m.version == 6  # failed exchanges still advance the version


def test_map_rejects_values_of_the_wrong_type_before_sending() -> None:
    m = MapMachine(STORE, str, int)
    with pytest.raises(InvalidValue, match="str, int"):
        m.check(MapInsert(1, "one"))
    with pytest.raises(InvalidValue):
        m.check(MapInsert("k", object()))
    with pytest.raises(ConfigError, match="key type list"):
        MapMachine(STORE, list[int], int)


def test_map_with_struct_keys_and_values() -> None:
    class Pt(msgspec.Struct, frozen=True):
        x: int
        y: int

    m = MapMachine(STORE, Pt, list[Pt])
    apply_all(m, [MapInsert(Pt(1, 2), [Pt(3, 4)])])
    copy = roundtrip(m, MapMachine(STORE, Pt, list[Pt]))
    assert copy.data == {Pt(1, 2): [Pt(3, 4)]}

    class Loose(msgspec.Struct):
        x: int

    with pytest.raises(ConfigError, match="frozen=True"):
        MapMachine(STORE, Loose, int)


# -- Vec --------------------------------------------------------------------------------------


def test_vec_surface() -> None:
    v = VecMachine(STORE, str)
    apply_all(
        v,
        [
            VecPushBack("b"),
            VecPushFront("a"),
            VecExtend(["c", "d"]),
            VecInsert(4, "e"),  # at len: append
            VecInsert(1, "x"),
            VecSwap(0, 5),
            VecRemove(1),
            VecPopFront(),
            VecPopBack(),
        ],
    )
    assert v.items == ["b", "c", "d"]
    assert v.get(0) == "b" and v.get(2) == "d"
    assert v.get(3) is None and v.get(-1) is None
    apply_all(v, [VecTruncate(1)], start=10)
    assert v.items == ["b"]
    apply_all(v, [VecClear(), VecPushBack("z")], start=11)
    assert v.items == ["z"]
    assert roundtrip(v, VecMachine(STORE, str)).items == ["z"]


@pytest.mark.parametrize(
    "command",
    [
        VecInsert(4, "x"),
        VecInsert(-1, "x"),
        VecSwap(0, 3),
        VecSwap(-1, 0),
        VecRemove(3),
        VecRemove(-1),
        VecTruncate(3),
        VecTruncate(10),
        VecTruncate(-1),
        VecExtend([]),
    ],
)
def test_vec_out_of_bounds_is_a_no_op(command) -> None:
    v = VecMachine(STORE, str)
    apply_all(v, [VecExtend(["a", "b", "c"]), command])
    assert v.items == ["a", "b", "c"]
    assert v.version == 2


def test_vec_pops_on_empty_are_no_ops() -> None:
    v = VecMachine(STORE, int)
    apply_all(v, [VecPopBack(), VecPopFront(), VecClear()])
    assert v.items == [] and v.version == 3


# -- Set --------------------------------------------------------------------------------------


def test_set_surface() -> None:
    s = SetMachine(STORE, int)
    apply_all(
        s,
        [
            SetInsert(3),
            SetExtend([1, 3, 2]),
            SetInsert(1),  # present: keeps its place
            SetRemove(99),
            SetRemoveMany([3, 42]),
        ],
    )
    assert list(s) == [1, 2]
    assert 1 in s and 3 not in s
    assert s.is_subset([1, 2, 5])
    assert not s.is_subset({1})
    other = SetMachine(STORE, int)
    apply_all(other, [SetExtend([2, 1, 0])])
    assert s.is_subset(other)
    apply_all(s, [SetClear(), SetInsert(7)], start=6)
    assert list(roundtrip(s, SetMachine(STORE, int))) == [7]


def test_set_items_must_be_hashable() -> None:
    with pytest.raises(ConfigError, match="item type"):
        SetMachine(STORE, dict[str, int])
    SetMachine(STORE, tuple[int, str])
    SetMachine(STORE, frozenset[int])


# -- Cell and Once ------------------------------------------------------------------------------


def test_cell_write_compare_exchange_clear() -> None:
    c = CellMachine(STORE, str)
    assert c.value is None and len(c) == 0
    apply_all(c, [CellCompareExchange(None, "first")])  # empty -> value
    assert c.value == "first"
    apply_all(c, [CellCompareExchange(None, "nope"), CellCompareExchange("x", "nope")], start=2)
    assert c.value == "first"
    apply_all(c, [CellCompareExchange("first", "second")], start=4)
    assert c.value == "second"
    apply_all(c, [CellWrite("third")], start=5)
    assert c.value == "third"
    apply_all(c, [CellCompareExchange("third", None)], start=6)  # swap to empty
    assert c.value is None
    apply_all(c, [CellWrite("again"), CellClear()], start=7)
    assert c.value is None and c.version == 8
    apply_all(c, [CellWrite("kept")], start=9)
    assert roundtrip(c, CellMachine(STORE, str)).value == "kept"


def test_once_keeps_the_first_committed_write() -> None:
    o = OnceMachine(STORE, int)
    apply_all(o, [CellWrite(1), CellWrite(2), CellWrite(3)])
    assert o.value == 1 and o.version == 3
    with pytest.raises(InvalidValue):
        o.check(CellClear())  # a Once has no clear
    copy = roundtrip(o, OnceMachine(STORE, int))
    apply_all(copy, [CellWrite(9)], start=4)
    assert copy.value == 1


# -- PriorityQueue --------------------------------------------------------------------------------


def pq(capacity=None) -> PriorityQueueMachine:
    return PriorityQueueMachine(STORE, int, str, str, capacity=capacity)


def test_priority_queue_ordering_ties_by_arrival() -> None:
    q = pq()
    apply_all(
        q,
        [
            PqInsert(5, "a", "A"),
            PqInsert(1, "b", "B"),
            PqInsert(5, "c", "C"),
            PqExtend([(9, "d", "D"), (1, "e", "E")]),
        ],
    )
    assert list(q.iter_asc()) == [
        (1, "b", "B"),
        (1, "e", "E"),
        (5, "a", "A"),
        (5, "c", "C"),
        (9, "d", "D"),
    ]
    assert list(q.iter_desc()) == [
        (9, "d", "D"),
        (5, "a", "A"),
        (5, "c", "C"),
        (1, "b", "B"),
        (1, "e", "E"),
    ]
    assert q.first_of(0) == (1, "b", "B")
    assert q.first_of(-1) == (9, "d", "D")
    # a value update (or an insert at the same priority) keeps the place in the bucket
    apply_all(q, [PqUpdateValue("b", "B2"), PqInsert(1, "e", "E2")], start=5)
    assert [k for _, k, _ in q.iter_asc()][:2] == ["b", "e"]
    # a priority change moves the entry to the end of its new bucket
    apply_all(q, [PqUpdatePriority("b", 5), PqInsert(1, "a", "A2")], start=7)
    assert [(p, k) for p, k, _ in q.iter_asc()] == [
        (1, "e"),
        (1, "a"),
        (5, "c"),
        (5, "b"),
        (9, "d"),
    ]
    assert q.by_key["b"] == (5, "B2")


def test_priority_queue_updates_of_missing_keys_are_no_ops() -> None:
    q = pq()
    apply_all(q, [PqInsert(1, "a", "A"), PqUpdatePriority("zz", 3), PqUpdateValue("zz", "Z")])
    assert list(q.iter_asc()) == [(1, "a", "A")] and q.version == 3


def test_priority_queue_compare_exchange_value() -> None:
    q = pq()
    apply_all(
        q,
        [
            PqInsert(1, "a", "A"),
            PqInsert(2, "b", "B"),
            PqCompareExchangeValue("a", "wrong", "X"),
            PqCompareExchangeValue("a", "A", "A2"),
            PqCompareExchangeValue("missing", "A", "M"),
            PqCompareExchangeValue("b", "B", None),
        ],
    )
    assert list(q.iter_asc()) == [(1, "a", "A2")]


@pytest.mark.parametrize(
    ("start", "end", "si", "ei", "left"),
    [
        (None, 3, True, False, [3, 4, 5]),  # ..3
        (None, 3, True, True, [4, 5]),  # ..=3
        (3, None, True, False, [1, 2]),  # 3..
        (2, 4, True, False, [1, 4, 5]),  # 2..4
        (2, 4, True, True, [1, 5]),  # 2..=4
        (2, 4, False, True, [1, 2, 5]),  # (2, 4]
        (None, None, True, False, []),  # ..
        (7, 9, True, True, [1, 2, 3, 4, 5]),  # nothing there
    ],
)
def test_priority_queue_remove_range(start, end, si, ei, left) -> None:
    q = pq()
    apply_all(q, [PqExtend([(p, f"k{p}", "v") for p in (5, 1, 4, 2, 3)])])
    apply_all(q, [PqRemoveRange(start, end, si, ei)], start=2)
    assert [p for p, _, _ in q.iter_asc()] == left
    assert len(q) == len(left) == len(q.by_key)


def test_priority_queue_remove_keys_and_clear() -> None:
    q = pq()
    apply_all(q, [PqExtend([(1, "a", "A"), (1, "b", "B"), (2, "c", "C")])])
    apply_all(q, [PqRemoveKeys(["a", "missing", "c"])], start=2)
    assert list(q.iter_asc()) == [(1, "b", "B")]
    apply_all(q, [PqClear(), PqInsert(3, "z", "Z")], start=3)
    assert list(q.iter_asc()) == [(3, "z", "Z")] and q.first_of(0) == q.first_of(-1)
    apply_all(q, [PqClear()], start=5)
    assert q.first_of(0) is None and len(q) == 0


def test_bounded_priority_queue_evicts_from_the_lowest_priority() -> None:
    q = pq(capacity=3)
    apply_all(q, [PqInsert(5, "a", ""), PqInsert(3, "b", ""), PqInsert(3, "c", "")])
    apply_all(q, [PqInsert(4, "d", "")], start=4)  # evicts the latest arrival at 3
    assert [(p, k) for p, k, _ in q.iter_asc()] == [(3, "b"), (4, "d"), (5, "a")]
    apply_all(q, [PqInsert(1, "e", "")], start=5)  # lower than everything: evicted at once
    assert [k for _, k, _ in q.iter_asc()] == ["b", "d", "a"]
    apply_all(q, [PqExtend([(9, "f", ""), (8, "g", ""), (7, "h", "")])], start=6)
    assert [(p, k) for p, k, _ in q.iter_asc()] == [(7, "h"), (8, "g"), (9, "f")]
    apply_all(q, [PqInsert(8, "h", "moved")], start=7)  # a re-insert does not grow the queue
    assert [(p, k) for p, k, _ in q.iter_asc()] == [(8, "g"), (8, "h"), (9, "f")]
    with pytest.raises(ConfigError, match="capacity"):
        pq(capacity=0)


def test_capacity_and_types_feed_the_signature() -> None:
    signatures = {
        MapMachine(STORE, str, int).signature(),
        MapMachine(STORE, str, str).signature(),
        MapMachine(Digest.from_name("other"), str, int).signature(),
        SetMachine(STORE, str).signature(),
        VecMachine(STORE, str).signature(),
        CellMachine(STORE, str).signature(),
        OnceMachine(STORE, str).signature(),
        pq().signature(),
        pq(capacity=10).signature(),
        pq(capacity=11).signature(),
    }
    assert len(signatures) == 10
    # readers and writers of one store join the same group
    assert (
        MapMachine(STORE, str, int, writer=False).signature()
        == MapMachine(STORE, str, int).signature()
    )
    expected = Digest.from_name("mosaik_collections_set").derive(STORE).derive("str")
    assert SetMachine(STORE, str).signature() == expected


def test_readers_are_observers() -> None:
    assert MapMachine(STORE, str, int).leadership_preference == LeadershipPreference.normal()
    reader = VecMachine(STORE, int, writer=False)
    assert not reader.leadership_preference.campaigns


def test_listeners_hear_applies_and_restores() -> None:
    heard: list[Change] = []
    m = MapMachine(STORE, str, int)
    m.add_listener(heard.append)
    apply_all(m, [MapInsert("a", 1)])
    m.restore(MapMachine(STORE, str, int).snapshot())
    m.remove_listener(heard.append)
    apply_all(m, [MapInsert("b", 2)], start=2)
    assert heard == [Change.APPLIED, Change.RESTORED]
    assert m.version == 2 and m.data == {"b": 2}


def test_restore_rejects_foreign_bytes() -> None:
    with pytest.raises(DecodeError):
        MapMachine(STORE, str, int).restore(VecMachine(STORE, str).snapshot())
    with pytest.raises(DecodeError):
        MapMachine(STORE, str, int).restore(b"\xc1")


# -- snapshots of 100k items ------------------------------------------------------------------


N = 100_000


@pytest.mark.parametrize(
    ("make", "load"),
    [
        (lambda: MapMachine(STORE, str, int), lambda: MapExtend([(f"k{i}", i) for i in range(N)])),
        (lambda: VecMachine(STORE, str), lambda: VecExtend([f"item-{i}" for i in range(N)])),
        (lambda: SetMachine(STORE, int), lambda: SetExtend(list(range(N)))),
        (
            lambda: PriorityQueueMachine(STORE, int, str, int),
            lambda: PqExtend([((i * 7919) % 1009, f"k{i}", i) for i in range(N)]),
        ),
    ],
    ids=["map", "vec", "set", "depq"],
)
def test_snapshot_of_100k_items_round_trips_quickly(make, load) -> None:
    machine = make()
    machine.apply(load(), ApplyContext(1, 1))
    started = time.perf_counter()
    data = machine.snapshot()
    fresh = make()
    fresh.restore(data)
    elapsed = time.perf_counter() - started
    assert len(fresh) == N
    assert fresh.snapshot() == data
    assert elapsed < 2.0, f"snapshot + restore of {N} items took {elapsed:.2f} s"
