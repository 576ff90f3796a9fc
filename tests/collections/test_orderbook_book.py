"""The order book state machine of examples/orderbook: price-time priority, cancels,
idempotent ids, queries, snapshots, and agreement of replicas on random order flow."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from examples.orderbook.book import (
    Book,
    Cancel,
    Depth,
    Level,
    Order,
    OrderBook,
    OrdersSeen,
    OrderStatus,
    Place,
    Placed,
    Rejected,
    Side,
    Top,
    TopOfBook,
)
from node.groups.state_machine import ApplyContext, StateMachine
from node.primitives import Decoder, encode

BUY, SELL = Side.BUY, Side.SELL


class Engine:
    """Applies commands at consecutive indices, through encode/decode like a group."""

    def __init__(self, book: OrderBook | None = None, index: int = 0) -> None:
        self.book = book or OrderBook()
        self.index = index
        self._decoder = Decoder(self.book.command_type)

    def __call__(self, command):
        self.index += 1
        return self.book.apply(self._decoder.decode(encode(command)), ApplyContext(self.index, 1))

    def place(self, oid: str, side: Side, price: int, qty: int, trader: str = "t"):
        return self(Place(Order(oid, trader, side, price, qty)))


def test_is_a_state_machine() -> None:
    assert isinstance(OrderBook(), StateMachine)


def test_price_then_time_priority_and_maker_price() -> None:
    e = Engine()
    e.place("s1", SELL, 101, 5, "alice")
    e.place("s2", SELL, 100, 5, "bob")
    e.place("s3", SELL, 100, 5, "carol")
    result = e.place("b1", BUY, 101, 12, "dave")
    assert isinstance(result, Placed)
    assert [(f.maker_order, f.price, f.qty) for f in result.fills] == [
        ("s2", 100, 5),  # best price first
        ("s3", 100, 5),  # then the earlier order at the next best
        ("s1", 101, 2),
    ]
    assert [f.seq for f in result.fills] == [1, 2, 3]
    assert all(f.taker == "dave" and f.taker_side is BUY for f in result.fills)
    assert result.resting == 0
    assert e.book.query(OrderStatus("s1")) == 3
    assert e.book.query(OrderStatus("s2")) is None


def test_remainder_rests_and_uncrossed_orders_rest() -> None:
    e = Engine()
    e.place("b1", BUY, 99, 4)
    e.place("s1", SELL, 100, 3)
    assert e.book.query(TopOfBook()) == Top(Level(99, 4), Level(100, 3))
    result = e.place("b2", BUY, 100, 5)
    assert isinstance(result, Placed) and result.resting == 2
    assert e.book.query(TopOfBook()) == Top(Level(100, 2), None)
    sold = e.place("s2", SELL, 98, 10)  # sweeps bids from the highest
    assert isinstance(sold, Placed)
    assert [(f.maker_order, f.price, f.qty) for f in sold.fills] == [("b2", 100, 2), ("b1", 99, 4)]
    assert e.book.query(TopOfBook()) == Top(None, Level(98, 4))


def test_cancel_and_idempotent_ids() -> None:
    e = Engine()
    e.place("b1", BUY, 50, 1)
    assert e(Cancel("b1")) is True
    assert e(Cancel("b1")) is False
    assert e(Cancel("never")) is False
    assert isinstance(e.place("b1", BUY, 50, 1), Rejected)  # the id was used
    e.place("s1", SELL, 60, 1)
    e.place("b2", BUY, 60, 1)  # fills s1 completely
    assert e(Cancel("s1")) is False
    assert isinstance(e.place("x", BUY, 0, 1), Rejected)
    assert isinstance(e.place("y", BUY, 1, 0), Rejected)
    assert e.book.query(OrdersSeen()) == 3  # b1, s1, b2; rejected orders are not seen
    assert e.book.query(TopOfBook()) == Top(None, None)


def test_depth_aggregates_levels_best_first() -> None:
    e = Engine()
    for i, (price, qty) in enumerate([(10, 1), (12, 2), (11, 3), (12, 4)]):
        e.place(f"b{i}", BUY, price, qty)
    for i, (price, qty) in enumerate([(20, 1), (21, 2), (20, 5)]):
        e.place(f"s{i}", SELL, price, qty)
    assert e.book.query(Depth(2)) == Book(
        bids=[Level(12, 6), Level(11, 3)], asks=[Level(20, 6), Level(21, 2)]
    )
    assert e.book.query(Depth(10)).bids[-1] == Level(10, 1)


def test_snapshot_restore_continues_identically() -> None:
    e = Engine()
    e.place("s1", SELL, 100, 5)
    e.place("s2", SELL, 100, 5)
    e.place("b1", BUY, 100, 3)
    e.place("b2", BUY, 90, 3)
    copy = OrderBook()
    copy.restore(e.book.snapshot())
    assert copy.snapshot() == e.book.snapshot()
    twin = Engine(copy, e.index)
    for engine in (e, twin):
        result = engine.place("b3", BUY, 100, 4)
        assert [(f.seq, f.maker_order, f.qty) for f in result.fills] == [(2, "s1", 2), (3, "s2", 2)]
    assert isinstance(twin.place("b1", BUY, 1, 1), Rejected)  # seen ids survive a snapshot


orders = st.builds(
    lambda oid, side, price, qty: Place(Order(f"o{oid}", f"t{oid % 3}", side, price, qty)),
    st.integers(0, 30),
    st.sampled_from([BUY, SELL]),
    st.integers(95, 105),
    st.integers(1, 5),
)
cancels = st.builds(lambda oid: Cancel(f"o{oid}"), st.integers(0, 30))


@settings(max_examples=80, deadline=None)
@given(st.lists(orders | cancels, max_size=60), st.integers(0, 60))
def test_replicas_agree_and_the_book_never_crosses(commands, cut) -> None:
    a, b = Engine(), Engine()
    late = None
    placed: dict[str, int] = {}
    filled: dict[str, int] = {}
    cancelled: dict[str, int] = {}
    for i, command in enumerate(commands):
        if i == cut:
            late = Engine(OrderBook(), a.index)
            late.book.restore(a.book.snapshot())
        if isinstance(command, Cancel):
            left = a.book.query(OrderStatus(command.order_id))
        result = a(command)
        assert b(command) == result
        if late is not None:
            assert late(command) == result
        top = a.book.query(TopOfBook())
        assert top.bid is None or top.ask is None or top.bid.price < top.ask.price
        if isinstance(result, Placed):
            placed[command.order.id] = command.order.qty
            for fill in result.fills:
                filled[fill.taker_order] = filled.get(fill.taker_order, 0) + fill.qty
                filled[fill.maker_order] = filled.get(fill.maker_order, 0) + fill.qty
        elif result is True:
            cancelled[command.order_id] = left
    assert a.book.snapshot() == b.book.snapshot()
    if late is not None:
        assert late.book.snapshot() == a.book.snapshot()
    for oid, qty in placed.items():  # every lot is filled, resting or cancelled
        resting = a.book.query(OrderStatus(oid)) or 0
        assert filled.get(oid, 0) + resting + cancelled.get(oid, 0) == qty
