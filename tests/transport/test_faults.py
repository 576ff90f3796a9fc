"""The fault shim drops, delays and partitions as configured (real QUIC above it)."""

from __future__ import annotations

import asyncio

import pytest

from node.transport import Connection, FaultShim, TransportConfig
from node.transport.errors import ConnectError
from tests.conftest import deadline, wait_until


async def echo(conn: Connection) -> None:
    while True:
        stream = await conn.accept_stream()
        async for body in stream:
            await stream.send_body(body)


def test_shim_counts_what_it_does() -> None:
    sent: list[bytes] = []
    shim = FaultShim(drop=0.5, seed=7)
    for i in range(1000):
        shim.send(lambda d, a: sent.append(d), bytes([i % 256]), ("127.0.0.1", 1), ("127.0.0.1", 2))
    assert shim.stats.dropped + len(sent) == 1000
    assert 400 < shim.stats.dropped < 600
    again: list[bytes] = []
    replay = FaultShim(drop=0.5, seed=7)
    for i in range(1000):
        replay.send(
            lambda d, a: again.append(d), bytes([i % 256]), ("127.0.0.1", 1), ("127.0.0.1", 2)
        )
    assert again == sent, "the same seed drops the same datagrams"


def test_shim_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="drop probability"):
        FaultShim(drop=1.5)


async def test_lossy_link_still_delivers_in_order(make_endpoint) -> None:
    shim = FaultShim(drop=0.2, seed=1)
    a, b = await make_endpoint(faults=shim), await make_endpoint()
    b.register("/test/1", echo)
    conn = await a.connect(b.local_addr, "/test/1")
    stream = await conn.open_stream()
    for i in range(200):
        await stream.send_body(i.to_bytes(2, "big"))
    got = [int.from_bytes(await stream.recv() or b"", "big") for _ in range(200)]
    assert got == list(range(200))
    assert shim.stats.dropped > 0


async def test_added_delay_is_applied(make_endpoint) -> None:
    shim = FaultShim(delay=0.05)
    a, b = await make_endpoint(faults=shim), await make_endpoint()
    b.register("/test/1", echo)
    conn = await a.connect(b.local_addr, "/test/1")
    stream = await conn.open_stream()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await stream.send_body(b"ping")
    assert await stream.recv() == b"ping"
    assert loop.time() - start >= 0.05
    assert shim.stats.delayed > 0


async def test_partition_cuts_and_heal_restores(make_endpoint) -> None:
    shim = FaultShim()
    config = TransportConfig(idle_timeout=0.5)
    a, b = await make_endpoint(faults=shim, config=config), await make_endpoint()
    b.register("/test/1", echo)
    shim.partition([a.local_addr], [b.local_addr])
    with pytest.raises(ConnectError):
        await a.connect(b.local_addr, "/test/1")
    assert shim.stats.partitioned > 0
    shim.heal()
    conn = await asyncio.wait_for(a.connect(b.local_addr, "/test/1"), deadline(5))
    assert conn.peer_id == b.peer_id


async def test_one_way_block_is_asymmetric(make_endpoint) -> None:
    shim = FaultShim()
    config = TransportConfig(idle_timeout=0.5)
    a = await make_endpoint(faults=shim, config=config)
    b = await make_endpoint(config=config)
    a.register("/test/1", echo)
    shim.block(a.local_addr, b.local_addr)  # a's datagrams to b are lost, b's to a arrive
    dial = asyncio.create_task(b.connect(a.local_addr, "/test/1"))
    await wait_until(lambda: a.statistics()["connections"] == 1, 5, "a saw b's handshake")
    with pytest.raises(ConnectError):
        await dial  # a's answer never reaches b
    assert shim.stats.partitioned > 0
