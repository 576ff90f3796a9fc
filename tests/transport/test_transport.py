"""Real QUIC on loopback: authentication, framing, close codes, backpressure, pooling."""

from __future__ import annotations

import asyncio
import struct

import msgspec
import pytest

from node.errors import DecodeError
from node.primitives import Decoder, Digest, SecretKey
from node.transport import Connection, Endpoint, PeerAddr, TransportConfig, codes
from node.transport.errors import (
    ConnectError,
    ConnectionClosed,
    DifferentNetwork,
    PeerMismatch,
)
from tests.conftest import deadline, wait_until


class Ping(msgspec.Struct):
    seq: int
    text: str


async def echo(conn: Connection) -> None:
    while True:
        stream = await conn.accept_stream()
        async for body in stream:
            await stream.send_body(body)


async def test_two_nodes_exchange_frames_and_know_each_other(make_endpoint) -> None:
    a, b = await make_endpoint(), await make_endpoint()
    seen: list[Connection] = []

    async def handler(conn: Connection) -> None:
        seen.append(conn)
        await echo(conn)

    b.register("/test/1", handler)
    conn = await a.connect(b.local_addr, "/test/1", expected=b.peer_id)
    assert conn.peer_id == b.peer_id
    stream = await conn.open_stream()
    for seq in range(50):
        await stream.send(Ping(seq, "hello"))
    decoder = Decoder(Ping)
    replies = [await stream.recv_as(decoder) for _ in range(50)]
    assert [r.seq for r in replies if r] == list(range(50))
    assert seen[0].peer_id == a.peer_id
    assert seen[0].alpn == "/test/1"


async def test_dial_reaching_another_peer_is_closed(make_endpoint) -> None:
    a, b = await make_endpoint(), await make_endpoint()
    b.register("/test/1", echo)
    impostor = SecretKey.generate().peer_id
    with pytest.raises(PeerMismatch):
        await a.connect(b.local_addr, "/test/1", expected=impostor)
    await wait_until(lambda: not b.connections(), 5, "b forgot the connection")


async def test_different_networks_refuse_each_other(make_endpoint) -> None:
    a = await make_endpoint(network=Digest.from_name("net-a"))
    b = await make_endpoint(network=Digest.from_name("net-b"))
    b.register("/test/1", echo)
    with pytest.raises(DifferentNetwork) as info:
        await a.connect(b.local_addr, "/test/1")
    assert info.value.code == codes.DIFFERENT_NETWORK
    assert info.value.by_peer


async def test_unknown_alpn_is_refused(make_endpoint) -> None:
    a, b = await make_endpoint(), await make_endpoint()
    b.register("/test/1", echo)
    with pytest.raises(ConnectError, match="does not speak"):
        await a.connect(b.local_addr, "/other/1")


async def test_oversized_frame_closes_with_protocol_violation(make_endpoint) -> None:
    small = TransportConfig(max_frame=1024)
    a, b = await make_endpoint(config=small), await make_endpoint(config=small)
    closed: asyncio.Future[ConnectionClosed] = asyncio.get_running_loop().create_future()

    async def handler(conn: Connection) -> None:
        closed.set_result(await conn.wait_closed())

    b.register("/test/1", handler)
    conn = await a.connect(b.local_addr, "/test/1")
    stream = await conn.open_stream()
    # Bypass the sender's own limit: declare a 1 MiB frame on the wire.
    conn._write(stream.stream_id, struct.pack(">I", 1 << 20) + b"x" * 100, end_stream=False)
    info = await asyncio.wait_for(closed, deadline(5))
    assert info.code == codes.PROTOCOL_VIOLATION
    peer_view = await asyncio.wait_for(conn.wait_closed(), deadline(5))
    assert peer_view.code == codes.PROTOCOL_VIOLATION and peer_view.by_peer
    assert "exceeds the maximum" in peer_view.reason


async def test_malformed_body_closes_only_that_connection(make_endpoint) -> None:
    a, b, c = await make_endpoint(), await make_endpoint(), await make_endpoint()
    errors: list[DecodeError] = []

    async def typed(conn: Connection) -> None:
        stream = await conn.accept_stream()
        decoder = Decoder(Ping)
        while True:
            try:
                msg = await stream.recv_as(decoder)
            except DecodeError as exc:
                errors.append(exc)
                raise
            if msg is None:
                return
            await stream.send(msg)

    b.register("/test/1", typed)
    bad = await a.connect(b.local_addr, "/test/1")
    good = await c.connect(b.local_addr, "/test/1")
    bad_stream = await bad.open_stream()
    await bad_stream.send({"not": "a ping"})
    info = await asyncio.wait_for(bad.wait_closed(), deadline(5))
    assert info.code == codes.PROTOCOL_VIOLATION
    assert "invalid Ping message" in str(errors[0])
    good_stream = await good.open_stream()
    await good_stream.send(Ping(1, "still served"))
    assert await good_stream.recv_as(Decoder(Ping)) == Ping(1, "still served")


async def test_backpressure_bounds_unacked_bytes(make_endpoint) -> None:
    config = TransportConfig(stream_window=64 * 1024, send_high_water=64 * 1024)
    a, b = await make_endpoint(config=config), await make_endpoint(config=config)
    release = asyncio.Event()
    received = 0

    async def slow(conn: Connection) -> None:
        nonlocal received
        stream = await conn.accept_stream()
        await release.wait()
        async for body in stream:
            received += len(body)

    b.register("/test/1", slow)
    conn = await a.connect(b.local_addr, "/test/1")
    stream = await conn.open_stream()
    body = b"x" * 1000
    sent = 0
    peak = 0

    async def writer() -> None:
        nonlocal sent, peak
        for _ in range(1000):
            await stream.send_body(body)
            sent += 1
            peak = max(peak, conn.unacked_bytes(stream))

    task = asyncio.create_task(writer())
    # The writer stalls: at most one receive window plus one high-water mark gets out.
    await wait_until(lambda: sent > 0, 5, "writer started")
    await asyncio.sleep(0)
    stalled_at = -1
    for _ in range(50):
        before = sent
        await asyncio.sleep(0.02)
        if sent == before:
            stalled_at = sent
            break
    assert 0 < stalled_at < 1000, "writer should be blocked by the slow reader"
    assert stalled_at * 1004 <= 64 * 1024 * 2 + 2 * 1004
    assert peak <= config.send_high_water + 1004
    release.set()
    await asyncio.wait_for(task, deadline(10))
    stream.finish()
    await wait_until(lambda: received == 1000 * 1000, 10, "reader got everything")


async def test_pool_reuses_one_connection(make_endpoint) -> None:
    a, b = await make_endpoint(), await make_endpoint()
    b.register("/test/1", echo)
    peer = PeerAddr(b.peer_id, b.local_addr)
    first, second = await asyncio.gather(
        a.connection(peer, "/test/1"), a.connection(peer, "/test/1")
    )
    assert first is second
    first.close()
    third = await a.connection(peer, "/test/1")
    assert third is not first and not third.closed


async def test_forgetting_a_restarted_peer_closes_what_was_opened_before_its_start(
    make_endpoint,
) -> None:
    a, b, c = await make_endpoint(), await make_endpoint(), await make_endpoint()
    for endpoint in (b, c):
        endpoint.register("/test/1", echo)
        endpoint.register("/test/2", echo)
    peer = PeerAddr(b.peer_id, b.local_addr)
    pooled = await a.connection(peer, "/test/1")
    direct = await a.connect(b.local_addr, "/test/2", expected=b.peer_id)
    kept = await a.connect(b.local_addr, "/test/2", expected=b.peer_id)
    bystander = await a.connection(PeerAddr(c.peer_id, c.local_addr), "/test/1")
    restarted_at = max(conn.opened_at for conn in (pooled, direct, kept)) + 0.001

    assert a.forget_peer(b.peer_id, "spared", opened_before=pooled.opened_at) == 0
    assert (
        a.forget_peer(b.peer_id, "the peer restarted", opened_before=restarted_at, keep=kept) == 2
    )

    for conn in (pooled, direct):
        info = await asyncio.wait_for(conn.wait_closed(), deadline(5))
        assert (info.code, info.reason, info.by_peer) == (
            codes.SUCCESS,
            "the peer restarted",
            False,
        )
    assert not kept.closed and not bystander.closed
    fresh = await a.connection(peer, "/test/1")
    assert fresh is not pooled
    stream = await fresh.open_stream()
    await stream.send(Ping(1, "again"))
    assert await asyncio.wait_for(stream.recv_as(Decoder(Ping)), deadline(5)) == Ping(1, "again")
    await wait_until(lambda: len(b.connections()) == 2, 5, "b saw the stale ones close")


async def test_graceful_shutdown_is_seen_by_peer(make_endpoint) -> None:
    a, b = await make_endpoint(), await make_endpoint()
    b.register("/test/1", echo)
    conn = await a.connect(b.local_addr, "/test/1")
    await b.close()
    info = await asyncio.wait_for(conn.wait_closed(), deadline(5))
    assert info.code == codes.GRACEFUL_SHUTDOWN and info.by_peer


async def test_unreachable_peer_is_a_connect_error(make_endpoint) -> None:
    a = await make_endpoint(config=TransportConfig(idle_timeout=0.5))
    silent = await make_endpoint()
    await silent.close()
    with pytest.raises(ConnectError):
        await a.connect(silent.local_addr, "/test/1")


async def test_closing_rejects_further_dials(make_endpoint) -> None:
    a: Endpoint = await make_endpoint()
    await a.close()
    with pytest.raises(ConnectError):
        await a.connect("127.0.0.1:9", "/test/1")


async def test_frame_larger_than_the_receive_window_arrives(make_endpoint) -> None:
    config = TransportConfig(stream_window=64 * 1024, send_high_water=64 * 1024)
    a, b = await make_endpoint(config=config), await make_endpoint(config=config)
    b.register("/test/1", echo)
    conn = await a.connect(b.local_addr, "/test/1")
    stream = await conn.open_stream()
    big = b"z" * (512 * 1024)
    await stream.send_body(big)
    assert await asyncio.wait_for(stream.recv(), deadline(10)) == big
