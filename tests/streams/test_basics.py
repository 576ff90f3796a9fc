"""Streams between real nodes on loopback: delivery, stats, ids, limits, conditions."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from node.primitives import Digest, PeerId, encode
from node.streams import (
    AlreadyExists,
    Backoff,
    ChannelState,
    Closed,
    Consumer,
    Full,
    InvalidDatum,
    Offline,
    default_stream_id,
    minimum_of,
    with_tags,
)
from node.transport import codes
from tests.conftest import deadline, wait_until
from tests.streams.conftest import MakeNode, Reading, streams


async def test_send_recv_100_datums_to_two_consumers_with_exact_stats(make_node: MakeNode) -> None:
    a, b, c = await make_node(), await make_node(), await make_node()
    producer = streams(a).produce(Reading)
    consumers = [streams(b).consume(Reading), streams(c).consume(Reading)]
    sent = [Reading("t1", i, i / 2) for i in range(100)]
    size = sum(len(encode(r)) for r in sent)
    async with asyncio.timeout(deadline(15)):
        await producer.when.subscribed(minimum_of=2)
        for reading in sent:
            await producer.send(reading)
        for consumer in consumers:
            assert [await consumer.recv() for _ in range(100)] == sent
    for consumer in consumers:
        (channel,) = consumer.producers()
        assert channel.peer_id == a.peer_id and channel.state is ChannelState.CONNECTED
        assert (channel.datums, channel.bytes) == (100, size)
        assert channel.uptime > 0
        assert consumer.statistics()["datums_received"] == 100
    await wait_until(lambda: producer.statistics()["datums_sent"] == 200, 5, "producer stats")
    by_peer = {ch.peer_id: ch for ch in producer.consumers()}
    assert set(by_peer) == {b.peer_id, c.peer_id}
    assert all((ch.datums, ch.bytes, ch.dropped) == (100, size, 0) for ch in by_peer.values())
    metrics = a.metrics.exposition().decode()
    assert "mosaik_streams_items_sent_total" in metrics and 'stream="' in metrics


async def test_default_and_custom_stream_ids_route_apart(make_node: MakeNode) -> None:
    a, b = await make_node(), await make_node()
    assert default_stream_id(Reading) == Digest.from_name("tests.streams.conftest.Reading")
    plain = streams(a).produce(Reading)
    custom = streams(a).produce(Reading, stream_id="readings-eu")
    assert streams(a).produce(Reading) is plain  # the existing producer
    with pytest.raises(AlreadyExists):
        streams(a).producer(Reading).stream_id("readings-eu").build()
    with pytest.raises(AlreadyExists, match="produced here for"):
        streams(a).produce(bytes, stream_id="readings-eu")
    eu = streams(b).consumer(Reading).stream_id("readings-eu").build()
    everything = streams(b).consume(Reading)
    async with asyncio.timeout(deadline(15)):
        await custom.when.online()
        await plain.when.online()
        await custom.send(Reading("eu", 1))
        await plain.send(Reading("any", 2))
        assert await eu.recv() == Reading("eu", 1)
        assert await everything.recv() == Reading("any", 2)
    assert eu.statistics()["datums_received"] == 1
    assert everything.statistics()["datums_received"] == 1


async def test_max_consumers_admits_3_of_7_and_frees_a_slot_on_leave(make_node: MakeNode) -> None:
    a = await make_node()
    producer = streams(a).produce(Reading, max_consumers=3)
    others = [await make_node() for _ in range(7)]
    retry = Backoff(initial=0.1, maximum=0.5)
    consumers = [streams(n).consume(Reading, backoff=retry) for n in others]

    def refused(consumer: Consumer[Reading]) -> bool:
        return any(ch.close_code == codes.STREAM_NO_CAPACITY for ch in consumer.producers())

    def served() -> set[PeerId]:
        return {ch.peer_id for ch in producer.consumers()}

    async with asyncio.timeout(deadline(20)):
        await producer.when.subscribed(minimum_of=3)
        await wait_until(lambda: sum(map(refused, consumers)) >= 4, 10, "4 refused: NoCapacity")
        assert len(served()) == 3
        leaving = next(n for n in others if n.peer_id in served())
        await streams(leaving).close()
        await wait_until(
            lambda: len(served()) == 3 and leaving.peer_id not in served(), 10, "slot refilled"
        )


async def test_online_when_minimum_of_and_with_tags(make_node: MakeNode) -> None:
    a = await make_node()
    two = streams(a).produce(Reading, online_when=minimum_of(2))
    gpu = streams(a).produce(Reading, stream_id="gpu-readings", online_when=with_tags("gpu"))
    b = await make_node()
    streams(b).consume(Reading)
    streams(b).consume(Reading, stream_id="gpu-readings")
    async with asyncio.timeout(deadline(15)):
        await two.when.subscribed(minimum_of=1)
        await gpu.when.subscribed(minimum_of=1)
        assert not two.is_online and not gpu.is_online
        c = await make_node(tags=["gpu"])
        streams(c).consume(Reading)
        streams(c).consume(Reading, stream_id="gpu-readings")
        await two.when.online()
        await gpu.when.online()
        assert len(gpu.consumers()) == 2


async def test_send_waits_and_try_send_is_offline_while_offline(make_node: MakeNode) -> None:
    a = await make_node()
    producer = streams(a).produce(Reading)
    with pytest.raises(Offline) as offline:
        producer.try_send(Reading("x", 0))
    assert offline.value.datum == Reading("x", 0)
    pending = asyncio.ensure_future(producer.send(Reading("x", 1)))
    await asyncio.sleep(0)  # one turn: send runs until it waits
    assert not pending.done()
    stats = producer.statistics()
    assert not stats["online"] and stats["buffered"] == stats["datums_sent"] == 0
    b = await make_node()
    consumer = streams(b).consume(Reading)
    async with asyncio.timeout(deadline(15)):
        await pending
        assert await consumer.recv() == Reading("x", 1)
    await consumer.close()
    async with asyncio.timeout(deadline(10)):
        await producer.when.offline()
    with pytest.raises(Offline):
        producer.try_send(Reading("x", 2))
    await producer.close()
    with pytest.raises(Closed):
        producer.try_send(Reading("x", 3))
    with pytest.raises(Closed):
        await producer.send(Reading("x", 3))


async def test_try_send_full_undelivered_sink_and_invalid_datums(make_node: MakeNode) -> None:
    a = await make_node()
    lost: list[Reading] = []
    nobody = streams(a).produce(Reading, online_when=minimum_of(0), undelivered=lost.append)
    await nobody.send(Reading("x", 1))
    nobody.try_send(Reading("x", 2))
    assert lost == [Reading("x", 1), Reading("x", 2)]
    with pytest.raises(InvalidDatum, match="carries Reading, got str"):
        await nobody.send("not a reading")  # type: ignore[arg-type]

    class Opaque(msgspec.Struct):
        thing: object

    weird = streams(a).produce(Opaque, online_when=minimum_of(0))
    with pytest.raises(InvalidDatum, match="cannot encode"):
        weird.try_send(Opaque(object()))
    with pytest.raises(InvalidDatum, match="maximum frame"):
        streams(a).produce(bytes, online_when=minimum_of(0)).try_send(b"x" * (5 << 20))

    small = streams(a).produce(Reading, stream_id="small", buffer_size=4)
    b = await make_node()
    consumer = streams(b).consume(Reading, stream_id="small")
    async with asyncio.timeout(deadline(15)):
        await small.when.online()
    for i in range(4):
        small.try_send(Reading("x", i))
    with pytest.raises(Full) as full:
        small.try_send(Reading("x", 4))
    assert full.value.datum == Reading("x", 4)
    async with asyncio.timeout(deadline(10)):
        assert [(await consumer.recv()).seq for _ in range(4)] == [0, 1, 2, 3]
