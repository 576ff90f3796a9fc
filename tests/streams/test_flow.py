"""Flow between real nodes: lagging consumers, order, restarts and malformed datums."""

from __future__ import annotations

import asyncio

import msgspec

from node.primitives import SecretKey
from node.streams import Backoff, ChannelState, Lagging
from node.transport import TransportConfig, codes
from tests.conftest import deadline, wait_until
from tests.streams.conftest import MakeNode, Reading, streams

# Small transport windows make a reader that stops reading stall its producer quickly.
SMALL_WINDOWS = TransportConfig(stream_window=16 * 1024, send_high_water=16 * 1024)
NEVER_RETRY = Backoff(initial=60, maximum=60)


class Blob(msgspec.Struct, frozen=True):
    seq: int
    data: bytes


async def lagging_setup(make_node: MakeNode, lagging: Lagging):
    a = await make_node(transport=SMALL_WINDOWS)
    b = await make_node(transport=SMALL_WINDOWS)
    c = await make_node(transport=SMALL_WINDOWS)
    producer = streams(a).produce(Blob, buffer_size=32, lagging=lagging, lag_timeout=0.2)
    healthy = streams(b).consume(Blob)
    slow = streams(c).consume(Blob, buffer_size=8, backoff=NEVER_RETRY)
    async with asyncio.timeout(deadline(15)):
        await producer.when.subscribed(minimum_of=2)
    return producer, healthy, slow


async def send_and_read(producer, healthy, count: int) -> list[int]:
    async def read() -> list[int]:
        return [(await healthy.recv()).seq for _ in range(count)]

    reader = asyncio.ensure_future(read())
    for seq in range(count):
        await producer.send(Blob(seq, b"x" * 1024))
        assert producer.statistics()["buffered"] <= 32
    return await reader


async def test_a_reader_that_stops_is_disconnected_as_too_slow(make_node: MakeNode) -> None:
    producer, healthy, slow = await lagging_setup(make_node, Lagging.DISCONNECT)
    async with asyncio.timeout(deadline(30)):
        received = await send_and_read(producer, healthy, 600)
        await wait_until(
            lambda: [ch.close_code for ch in slow.producers()] == [codes.STREAM_TOO_SLOW],
            5,
            "slow consumer told TooSlow",
        )
    assert received == list(range(600))
    assert [ch.state for ch in slow.producers()] == [ChannelState.WAITING]
    assert slow.statistics()["buffered"] <= 8
    assert len(producer.consumers()) == 1


async def test_a_reader_that_stops_loses_its_oldest_datums_under_drop(make_node: MakeNode) -> None:
    producer, healthy, slow = await lagging_setup(make_node, Lagging.DROP)
    async with asyncio.timeout(deadline(30)):
        received = await send_and_read(producer, healthy, 600)
    assert received == list(range(600))
    by_peer = {ch.peer_id: ch for ch in producer.consumers()}
    assert len(by_peer) == 2  # still connected
    lagging = next(ch for ch in by_peer.values() if ch.dropped > 0)
    assert lagging.datums + lagging.dropped <= 600
    # What the slow reader does get is in order, with the gap where datums were dropped.
    seqs = [(await slow.recv()).seq for _ in range(8)]
    assert seqs == sorted(seqs)


async def test_order_is_preserved_per_producer(make_node: MakeNode) -> None:
    producers = [await make_node() for _ in range(3)]
    c = await make_node()
    consumer = streams(c).consume(Reading)
    handles = [streams(n).produce(Reading) for n in producers]
    async with asyncio.timeout(deadline(20)):
        await consumer.when.subscribed(minimum_of=3)

        async def burst(index: int) -> None:
            for seq in range(500):
                await handles[index].send(Reading(f"p{index}", seq))

        await asyncio.gather(*(burst(i) for i in range(3)))
        got = [await consumer.recv() for _ in range(1500)]
    for index in range(3):
        assert [r.seq for r in got if r.sensor == f"p{index}"] == list(range(500))


async def test_a_restarted_producer_is_resubscribed(make_node: MakeNode) -> None:
    seed = await make_node()
    key = SecretKey.generate()
    first = await make_node(secret_key=key)
    consumer = streams(seed).consume(Reading, backoff=Backoff(initial=0.05, maximum=0.5))
    async with asyncio.timeout(deadline(20)):
        producer = streams(first).produce(Reading)
        await producer.when.online()
        await producer.send(Reading("first", 1))
        assert await consumer.recv() == Reading("first", 1)
        await streams(first).close()
        await first.close()
        await wait_until(lambda: not consumer.when.subscribed().is_met(), 10, "channel closed")
        again = await make_node(secret_key=key)  # same identity, new entry and address
        producer = streams(again).produce(Reading)
        await producer.when.online()
        await producer.send(Reading("again", 2))
        assert await consumer.recv() == Reading("again", 2)
    (channel,) = consumer.producers()
    assert channel.peer_id == key.peer_id and channel.state is ChannelState.CONNECTED


async def test_a_malformed_datum_closes_only_its_channel(make_node: MakeNode) -> None:
    a = await make_node()
    b = await make_node()
    # Same stream id, incompatible types: b cannot decode what a sends.
    wrong = streams(a).produce(Blob, stream_id="shared")
    consumer = streams(b).consume(Reading, stream_id="shared")
    healthy = streams(a).produce(Reading)
    fine = streams(b).consume(Reading)
    async with asyncio.timeout(deadline(15)):
        await wrong.when.online()
        await wrong.send(Blob(1, b"?"))
        await wait_until(
            lambda: [ch.state for ch in consumer.producers()] == [ChannelState.TERMINATED],
            5,
            "channel terminated",
        )
        (channel,) = consumer.producers()
        assert channel.close_code == codes.PROTOCOL_VIOLATION
        assert channel.error is not None
        assert f"malformed datum from producer {a.peer_id.short()}" in channel.error
        assert "invalid Reading message" in channel.error
        await healthy.when.online()
        await healthy.send(Reading("ok", 1))
        assert await fine.recv() == Reading("ok", 1)


async def test_closing_a_consumer_ends_iteration_after_the_buffer(make_node: MakeNode) -> None:
    a = await make_node()
    b = await make_node()
    producer = streams(a).produce(Reading)
    consumer = streams(b).consume(Reading)
    async with asyncio.timeout(deadline(15)):
        await producer.when.online()
        for seq in range(3):
            await producer.send(Reading("x", seq))
        await wait_until(lambda: consumer.statistics()["buffered"] == 3, 5, "three buffered")
        await consumer.close()
        assert [r.seq async for r in consumer] == [0, 1, 2]
        await producer.when.offline()


async def test_closing_the_node_tells_consumers_graceful_shutdown(make_node: MakeNode) -> None:
    a = await make_node()
    b = await make_node()
    streams(a).produce(Reading)
    consumer = streams(b).consume(Reading)
    async with asyncio.timeout(deadline(15)):
        await consumer.when.subscribed()
        await streams(a).close()
        await wait_until(
            lambda: [ch.close_code for ch in consumer.producers()] in ([], [204]),
            5,
            "GracefulShutdown or departure",
        )


async def test_a_quiet_channel_outlives_the_idle_timeout(make_node: MakeNode) -> None:
    brief = TransportConfig(idle_timeout=1.0, keepalive_interval=0.25)
    a = await make_node(transport=brief)
    b = await make_node(transport=brief)
    producer = streams(a).produce(Reading)
    consumer = streams(b).consume(Reading)
    async with asyncio.timeout(deadline(15)):
        await producer.when.online()
        await consumer.when.subscribed()
        (before,) = consumer.producers()
        await asyncio.sleep(2.5)  # the condition under test is time passing quietly
        (after,) = consumer.producers()
        assert after.state is ChannelState.CONNECTED
        assert after.connected_at == before.connected_at
        await producer.send(Reading("still here", 1))
        assert await consumer.recv() == Reading("still here", 1)
