"""The fan-out ring: shared bounded buffer, cursors, and who is to blame when it is full."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.streams.ring import FanoutRing


def bodies(n: int, start: int = 0) -> list[bytes]:
    return [str(i).encode() for i in range(start, start + n)]


def test_each_subscriber_reads_every_datum_pushed_after_it_joined() -> None:
    ring: FanoutRing[str] = FanoutRing(8)
    ring.add("a")
    ring.push(b"0")
    ring.add("b")
    ring.push(b"1")
    assert ring.take("a") == [b"0", b"1"]
    assert ring.take("b") == [b"1"]
    assert ring.take("a") == []


def test_full_when_the_slowest_is_capacity_behind() -> None:
    ring: FanoutRing[str] = FanoutRing(3)
    ring.add("fast")
    ring.add("slow")
    for body in bodies(3):
        ring.push(body)
    ring.take("fast")
    assert ring.room() == 0
    with pytest.raises(OverflowError):
        ring.push(b"x")
    assert ring.take("slow") == bodies(3)
    assert ring.room() == 3


def test_a_subscriber_that_is_merely_behind_is_not_lagging() -> None:
    ring: FanoutRing[str] = FanoutRing(2)
    ring.add("a")
    ring.push(b"0")
    ring.push(b"1")
    assert ring.room() == 0
    assert ring.lagging(now=100.0, grace=1.0) == []  # its writer has not run yet: wait
    assert ring.next_lag_deadline(1.0) is None


def test_a_holder_stalled_past_its_grace_is_lagging() -> None:
    ring: FanoutRing[str] = FanoutRing(2)
    ring.add("stalled")
    ring.add("healthy")
    ring.push(b"0")
    ring.push(b"1")
    ring.set_stalled("stalled", 10.0)
    ring.set_stalled("stalled", 12.0)  # still the same stall: it began at 10
    ring.set_stalled("healthy", 10.0)
    ring.take("healthy")  # caught up: not holding the ring even while stalled
    assert ring.next_lag_deadline(1.5) == 11.5
    assert ring.lagging(now=11.4, grace=1.5) == []
    assert ring.lagging(now=11.5, grace=1.5) == ["stalled"]
    ring.set_stalled("stalled", None)  # it wrote again: progress ends the stall
    assert ring.lagging(now=20.0, grace=1.5) == []
    assert ring.is_stalled("healthy") and not ring.is_stalled("stalled")


def test_drop_oldest_skips_datums_for_one_subscriber_only() -> None:
    ring: FanoutRing[str] = FanoutRing(3)
    ring.add("a")
    ring.add("b")
    for body in bodies(3):
        ring.push(body)
    assert ring.drop_oldest("a", 2) == 2
    assert ring.drop_oldest("a", 5) == 1
    assert ring.take("a") == []
    assert ring.take("b") == bodies(3)


def test_removing_the_slowest_frees_the_ring() -> None:
    ring: FanoutRing[str] = FanoutRing(2)
    ring.add("a")
    ring.add("b")
    ring.push(b"0")
    ring.push(b"1")
    ring.take("a")
    ring.remove("b")
    assert ring.room() == 2
    assert "b" not in ring and len(ring) == 1


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FanoutRing(0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), capacity=st.integers(1, 6))
def test_random_schedules_deliver_in_order_and_stay_bounded(seed: int, capacity: int) -> None:
    rng = random.Random(seed)
    ring: FanoutRing[int] = FanoutRing(capacity)
    received: dict[int, list[int]] = {}
    joined_at: dict[int, int] = {}
    dropped: dict[int, int] = {}
    sent = 0
    for _ in range(200):
        op = rng.random()
        if op < 0.1 and len(received) < 4:
            key = len(received) + len(joined_at) * 10
            ring.add(key)
            received[key], joined_at[key], dropped[key] = [], sent, 0
        elif op < 0.5 and received and ring.room() > 0:
            ring.push(str(sent).encode())
            sent += 1
        elif op < 0.6 and received:
            key = rng.choice(list(received))
            dropped[key] += ring.drop_oldest(key, rng.randint(0, 2))
        elif received:
            key = rng.choice(list(received))
            received[key] += [int(b) for b in ring.take(key)]
        assert ring.head - ring.tail <= capacity
        assert len(ring._items) <= 2 * capacity
    for key, values in received.items():
        values += [int(b) for b in ring.take(key)]
        assert values == sorted(values), f"seed {seed}: out of order"
        assert len(values) + dropped[key] == sent - joined_at[key], f"seed {seed}: lost datums"
