"""An order book replicated by three matchers, fed by traders over streams.

The matchers form one Raft group running the price-time-priority ``OrderBook`` state
machine (``book.py``). Traders produce ``Order`` streams; every matcher consumes them and
proposes each order to the group, which applies it once (order ids are idempotent), so an
order reaches the book as long as one matcher received it. The matcher whose proposal was
applied publishes the resulting fills on the ``Fill`` stream, which traders consume. Each
matcher prints the top of book once a second from a weak (local) query; at the end it
prints the depth from a strong (linearizable) query and a digest of its book.

One terminal each (the first matcher listens on a fixed address with a public demo key):

    .venv/bin/python examples/orderbook/run.py matcher m1 --host
    .venv/bin/python examples/orderbook/run.py matcher m2
    .venv/bin/python examples/orderbook/run.py matcher m3
    .venv/bin/python examples/orderbook/run.py trader alice
    .venv/bin/python examples/orderbook/run.py trader bob

or all five as processes, exiting 0 when the three books agree after every order:

    .venv/bin/python examples/orderbook/run.py demo [--orders 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from examples.orderbook.book import (
    Depth,
    Fill,
    Order,
    OrderBook,
    OrdersSeen,
    Place,
    Placed,
    Side,
    TopOfBook,
)
from node import Digest, Network, SecretKey
from node.groups import Offline
from node.streams import SendError

NETWORK = "mosaik-orderbook"
HOST_BIND = "127.0.0.1:7620"
# The demo host's key is public on purpose: the other roles derive its peer id to find it.
HOST_KEY = SecretKey.from_seed(b"mosaik-py orderbook demo host!!!")
HOST = f"{HOST_KEY.peer_id}@{HOST_BIND}"
ORDERS = "examples.orderbook.orders"
FILLS = "examples.orderbook.fills"
MATCHER = Digest.from_name("matcher")


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def matcher(name: str, *, host: bool, bootstrap: str, expect: int) -> int:
    stop = _stop_event()
    if host:
        starting = Network.create(NETWORK, secret_key=HOST_KEY, bind=HOST_BIND, tags=["matcher"])
    else:
        starting = Network.create(NETWORK, bootstrap=[bootstrap], tags=["matcher"])
    async with starting as net:
        group = await net.groups.join("orderbook", state_machine=OrderBook(), bootstrap_expect=3)
        orders = net.streams.consume(Order, stream_id=ORDERS)
        fills = net.streams.produce(Fill, stream_id=FILLS)
        print(f"{name}: matcher ready as {net.peer_id.short()}", flush=True)
        await group.when.online()
        print(f"{name}: group online, leader {group.leader.short() if group.leader else '?'}")

        async def match() -> None:
            async for order in orders:
                while True:
                    try:
                        executed = await group.execute(Place(order))
                        break
                    except Offline:  # no leader right now; ids are idempotent: retry
                        await group.when.online()
                if isinstance(executed.result, Placed):
                    for fill in executed.result.fills:
                        try:
                            fills.try_send(fill)
                        except SendError:
                            pass  # no trader listening right now

        async def report() -> None:
            while True:
                await asyncio.sleep(1)
                top = await group.query(TopOfBook())  # weak: this replica, no round trip
                seen = await group.query(OrdersSeen())
                bid = f"{top.bid.qty}@{top.bid.price}" if top.bid else "-"
                ask = f"{top.ask.qty}@{top.ask.price}" if top.ask else "-"
                role = "leader" if group.is_leader else "follower"
                print(f"{name}: {role}, {seen} orders, bid {bid} ask {ask}", flush=True)

        tasks = [asyncio.create_task(match()), asyncio.create_task(report())]
        if expect:
            while await group.query(OrdersSeen()) < expect:
                await group.when.committed().reaches(group.applied + 1)
            depth = await group.query(Depth(3), consistency="strong")  # linearizable
            digest = Digest.hash(group.state_machine.snapshot()).short()
            print(f"{name}: book {digest} after {expect} orders; depth {depth}", flush=True)
        await stop.wait()
        for task in tasks:
            task.cancel()
    return 0


async def trader(name: str, *, bootstrap: str, orders: int, seed: int) -> int:
    stop = _stop_event()
    async with Network.create(NETWORK, bootstrap=[bootstrap], tags=["trader"]) as net:
        producer = net.streams.produce(Order, stream_id=ORDERS)
        fills = net.streams.consume(
            Fill, stream_id=FILLS, require=lambda peer: MATCHER in peer.tags
        )
        print(f"{name}: trader ready as {net.peer_id.short()}", flush=True)

        async def show_fills() -> None:
            async for fill in fills:
                if name in (fill.taker, fill.maker):
                    verb = (
                        "bought"
                        if (fill.taker == name) == (fill.taker_side is Side.BUY)
                        else "sold"
                    )
                    print(f"{name}: {verb} {fill.qty}@{fill.price} (fill #{fill.seq})", flush=True)

        showing = asyncio.create_task(show_fills())
        await producer.when.subscribed(minimum_of=3)  # every matcher listens
        rng = random.Random(seed)
        for i in range(orders):
            side = rng.choice([Side.BUY, Side.SELL])
            price = 100 + rng.randint(-3, 3) + (-1 if side is Side.BUY else 1)
            await producer.send(Order(f"{name}-{i}", name, side, price, rng.randint(1, 10)))
            await asyncio.sleep(0.02)
        print(f"{name}: sent {orders} orders", flush=True)
        await stop.wait()
        showing.cancel()
    return 0


def demo(orders: int) -> int:
    """Three matchers and two traders as processes; 0 if the matchers' books agree."""
    script = [sys.executable, "-u", str(Path(__file__).resolve())]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    expect = ["--expect", str(2 * orders)]
    commands = [
        ["matcher", "m1", "--host", *expect],
        ["matcher", "m2", *expect],
        ["matcher", "m3", *expect],
        ["trader", "alice", "--orders", str(orders), "--seed", "1"],
        ["trader", "bob", "--orders", str(orders), "--seed", "2"],
    ]
    lines: queue.Queue[str] = queue.Queue()
    processes: list[subprocess.Popen[str]] = []

    def pump(process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    books: dict[str, str] = {}
    fills = 0
    try:
        for n, command in enumerate(commands):
            process = subprocess.Popen(
                [*script, *command], stdout=subprocess.PIPE, text=True, env=env
            )
            processes.append(process)
            threading.Thread(target=pump, args=(process,), daemon=True).start()
            if n == 0:
                time.sleep(0.5)  # let the host bind its well-known address first
        until = time.monotonic() + 120
        while len(books) < 3 and time.monotonic() < until:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            print(line, end="", flush=True)
            who, _, rest = line.partition(": ")
            if rest.startswith("book "):
                books[who] = rest.split()[1]
            elif rest.startswith(("bought ", "sold ")):
                fills += 1
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    agreed = len(books) == 3 and len(set(books.values())) == 1
    print(f"books {books}; fills seen by traders: {fills}; agreed: {agreed}", flush=True)
    return 0 if agreed else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    roles = parser.add_subparsers(dest="role", required=True)
    m = roles.add_parser("matcher", help="a member of the matching group")
    m.add_argument("name")
    m.add_argument("--host", action="store_true", help=f"listen on {HOST_BIND}")
    m.add_argument("--bootstrap", default=HOST, help="<peer-id>@host:port of any node")
    m.add_argument("--expect", type=int, default=0, help="print the book after N orders")
    t = roles.add_parser("trader", help="sends random limit orders, prints its fills")
    t.add_argument("name")
    t.add_argument("--bootstrap", default=HOST, help="<peer-id>@host:port of any node")
    t.add_argument("--orders", type=int, default=50)
    t.add_argument("--seed", type=int, default=0)
    d = roles.add_parser("demo", help="three matchers and two traders as processes")
    d.add_argument("--orders", type=int, default=50, help="orders per trader")
    args = parser.parse_args()
    if args.role == "demo":
        return demo(args.orders)
    if args.role == "matcher":
        return asyncio.run(
            matcher(args.name, host=args.host, bootstrap=args.bootstrap, expect=args.expect)
        )
    return asyncio.run(
        trader(args.name, bootstrap=args.bootstrap, orders=args.orders, seed=args.seed)
    )


if __name__ == "__main__":
    raise SystemExit(main())
