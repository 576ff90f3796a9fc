"""A price-time-priority limit order book as a replicated state machine.

Every matcher in the group applies the same ``Place``/``Cancel`` commands in log order, so
every matcher holds the same book and produces the same fills. Orders match against the best
opposite price first and, at one price, the earliest resting order first; a fill executes at
the resting (maker) order's price. Whatever is left of an incoming order rests in the book.

Commands are idempotent by order id: placing an id the book has already seen (resting,
filled or cancelled) is rejected, so several matchers may submit the same order and it
trades once.

Queries: ``TopOfBook`` (best bid and ask with their sizes), ``Depth`` (aggregated levels per
side), ``OrderStatus`` (what is left of an order) and ``OrdersSeen`` (orders placed so far).
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
from sortedcontainers import SortedDict

from node.groups.state_machine import ApplyContext
from node.primitives import Decoder, Digest, encode

SIGNATURE = Digest.from_name("examples.orderbook.v1")


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class Order(msgspec.Struct, frozen=True):
    """A limit order; ``price`` in ticks, ``qty`` in lots."""

    id: str
    trader: str
    side: Side
    price: int
    qty: int


class Fill(msgspec.Struct, frozen=True):
    """One trade between an incoming (taker) and a resting (maker) order."""

    seq: int
    price: int
    qty: int
    taker: str
    maker: str
    taker_order: str
    maker_order: str
    taker_side: Side


# -- commands and their results -------------------------------------------------------------


class Place(msgspec.Struct, frozen=True, tag="place"):
    order: Order


class Cancel(msgspec.Struct, frozen=True, tag="cancel"):
    order_id: str


Command = Place | Cancel


class Placed(msgspec.Struct, frozen=True):
    fills: list[Fill]
    resting: int  # what is left in the book


class Rejected(msgspec.Struct, frozen=True):
    reason: str


# -- queries --------------------------------------------------------------------------------


class TopOfBook(msgspec.Struct, frozen=True, tag="top"):
    pass


class Depth(msgspec.Struct, frozen=True, tag="depth"):
    levels: int = 5


class OrderStatus(msgspec.Struct, frozen=True, tag="status"):
    order_id: str


class OrdersSeen(msgspec.Struct, frozen=True, tag="seen"):
    pass


Query = TopOfBook | Depth | OrderStatus | OrdersSeen


class Level(msgspec.Struct, frozen=True, array_like=True):
    price: int
    qty: int


class Top(msgspec.Struct, frozen=True):
    bid: Level | None
    ask: Level | None


class Book(msgspec.Struct, frozen=True):
    bids: list[Level]  # best (highest) first
    asks: list[Level]  # best (lowest) first


# -- the machine ----------------------------------------------------------------------------


class _Snapshot(msgspec.Struct, frozen=True, array_like=True):
    fill_seq: int
    seen: list[str]
    resting: list[Order]  # bids best-first, then asks best-first; FIFO within a price


class OrderBook:
    """The matching engine (a ``node.groups.StateMachine``)."""

    command_type: Any = Command
    query_type: Any = Query

    def __init__(self) -> None:
        self._decoder: Decoder[_Snapshot] = Decoder(_Snapshot)
        self._clear()

    def _clear(self) -> None:
        # price -> {order id: resting order (qty = what is left)}, in arrival order
        self._bids: Any = SortedDict()
        self._asks: Any = SortedDict()
        self._resting: dict[str, Order] = {}
        self._seen: dict[str, None] = {}  # every order id ever placed, in order
        self._fill_seq = 0

    def signature(self) -> Digest:
        return SIGNATURE

    # -- commands ---------------------------------------------------------------------------

    def apply(self, command: Command, ctx: ApplyContext) -> Placed | Rejected | bool:
        if isinstance(command, Cancel):
            return self._cancel(command.order_id)
        return self._place(command.order)

    def _place(self, order: Order) -> Placed | Rejected:
        if order.id in self._seen:
            return Rejected(f"duplicate order id {order.id}")
        if order.qty <= 0 or order.price <= 0:
            return Rejected(f"order {order.id}: price and qty must be positive")
        self._seen[order.id] = None
        buying = order.side is Side.BUY
        opposite = self._asks if buying else self._bids
        fills: list[Fill] = []
        left = order.qty
        while left and opposite:
            price = opposite.peekitem(0 if buying else -1)[0]
            if (price > order.price) if buying else (price < order.price):
                break
            level = opposite[price]
            maker = next(iter(level.values()))
            traded = min(left, maker.qty)
            left -= traded
            self._fill_seq += 1
            fills.append(
                Fill(
                    self._fill_seq,
                    price,
                    traded,
                    order.trader,
                    maker.trader,
                    order.id,
                    maker.id,
                    order.side,
                )
            )
            if traded == maker.qty:
                del level[maker.id]
                del self._resting[maker.id]
                if not level:
                    del opposite[price]
            else:
                rest = msgspec.structs.replace(maker, qty=maker.qty - traded)
                level[maker.id] = rest
                self._resting[maker.id] = rest
        if left:
            self._rest(msgspec.structs.replace(order, qty=left))
        return Placed(fills, left)

    def _rest(self, order: Order) -> None:
        side = self._bids if order.side is Side.BUY else self._asks
        level = side.get(order.price)
        if level is None:
            side[order.price] = {order.id: order}
        else:
            level[order.id] = order
        self._resting[order.id] = order

    def _cancel(self, order_id: str) -> bool:
        order = self._resting.pop(order_id, None)
        if order is None:
            return False
        side = self._bids if order.side is Side.BUY else self._asks
        level = side[order.price]
        del level[order_id]
        if not level:
            del side[order.price]
        return True

    # -- queries ----------------------------------------------------------------------------

    def query(self, query: Query) -> Top | Book | int | None:
        if isinstance(query, TopOfBook):
            bids, asks = self._levels(self._bids, reverse=True), self._levels(self._asks)
            return Top(next(bids, None), next(asks, None))
        if isinstance(query, Depth):
            return Book(
                _take(self._levels(self._bids, reverse=True), query.levels),
                _take(self._levels(self._asks), query.levels),
            )
        if isinstance(query, OrdersSeen):
            return len(self._seen)
        order = self._resting.get(query.order_id)
        return None if order is None else order.qty

    @staticmethod
    def _levels(side: Any, reverse: bool = False) -> Any:
        prices = reversed(side) if reverse else iter(side)
        return (Level(p, sum(o.qty for o in side[p].values())) for p in prices)

    # -- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        resting = [o for p in reversed(self._bids) for o in self._bids[p].values()]
        resting += [o for p in self._asks for o in self._asks[p].values()]
        return encode(_Snapshot(self._fill_seq, list(self._seen), resting))

    def restore(self, data: bytes) -> None:
        snapshot = self._decoder.decode(data)
        self._clear()
        self._fill_seq = snapshot.fill_seq
        self._seen = dict.fromkeys(snapshot.seen)
        for order in snapshot.resting:
            self._rest(order)


def _take(levels: Any, count: int) -> list[Level]:
    return [level for _, level in zip(range(count), levels, strict=False)]
