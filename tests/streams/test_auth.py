"""Who may subscribe: predicates, tickets, catalog knowledge, and their re-evaluation."""

from __future__ import annotations

import asyncio

from node.network import Network
from node.primitives import Digest
from node.streams import Backoff, ChannelState, Consumer
from node.tickets import JwtTicketBuilder, JwtTicketValidator
from node.transport import codes
from tests.conftest import deadline, wait_until
from tests.streams.conftest import MakeNode, Reading, sees, streams

SECRET = b"streams-test-hmac-secret-32bytes"
FAST_RETRY = Backoff(initial=0.05, maximum=0.3)


def tagged(tag: str):
    digest = Digest.from_name(tag)
    return lambda peer: digest in peer.tags


def connected_to(consumer: Consumer[Reading]) -> set[object]:
    return {ch.peer_id for ch in consumer.producers() if ch.state is ChannelState.CONNECTED}


def jwt_for(net: Network, lifetime: float = 3600) -> None:
    ticket = JwtTicketBuilder(SECRET, "HS256").expires_in(lifetime).mint(net.peer_id)
    net.discovery.add_ticket(ticket)


async def test_unknown_consumer_is_refused_then_admitted_after_a_catalog_sync(
    make_node: MakeNode,
) -> None:
    producer_node = await make_node(bootstrap=False)
    consumer_node = await make_node(bootstrap=False)
    producer = streams(producer_node).produce(Reading)
    # The consumer learns of the producer out of band; the producer knows nothing of it.
    consumer_node.discovery.feed(producer_node.discovery.local_entry)
    assert not sees(producer_node, consumer_node)
    consumer = streams(consumer_node).consume(Reading)
    async with asyncio.timeout(deadline(15)):
        await consumer.when.subscribed()
        await producer.send(Reading("x", 1))
        assert await consumer.recv() == Reading("x", 1)
    assert sees(producer_node, consumer_node)
    rejected = producer_node.metrics.exposition().decode()
    assert "mosaik_streams_consumers_rejected_total{network=" in rejected
    assert "UNKNOWN_PEER (401)" in rejected


async def test_require_predicates_chain_on_both_sides(make_node: MakeNode) -> None:
    seed = await make_node()
    eu_gpu = await make_node(tags=["eu", "gpu"])
    eu = await make_node(tags=["eu"])
    for net in (eu_gpu, eu):
        streams(net).produce(Reading)
    # Consumer side: AND of two predicates picks the producer with both tags.
    picky = streams(seed).consumer(Reading).require(tagged("eu")).require(tagged("gpu")).build()
    lenient = streams(seed).consume(Reading, require=tagged("eu"))
    async with asyncio.timeout(deadline(15)):
        await picky.when.subscribed()
        await lenient.when.subscribed(minimum_of=2)
    assert connected_to(picky) == {eu_gpu.peer_id}
    # Producer side: only consumers carrying both tags are admitted.
    gated = streams(seed).producer(Reading).stream_id("gated")
    gated_producer = gated.require(tagged("eu")).require(tagged("gpu")).build()
    for net in (eu_gpu, eu):
        streams(net).consume(Reading, stream_id="gated", backoff=FAST_RETRY)
    async with asyncio.timeout(deadline(15)):
        await gated_producer.when.subscribed()
        await wait_until(
            lambda: any(
                ch.close_code == codes.STREAM_NOT_ALLOWED
                for c in streams(eu).consumers()
                for ch in c.producers()
            ),
            10,
            "the eu-only consumer refused with NotAllowed",
        )
    assert {ch.peer_id for ch in gated_producer.consumers()} == {eu_gpu.peer_id}


async def test_jwt_tickets_gate_both_directions(make_node: MakeNode) -> None:
    validator = JwtTicketValidator({"HS256": SECRET})
    seed = await make_node()
    holder = await make_node()
    stranger = await make_node()
    jwt_for(holder)
    # Consumers subscribe only to producers holding a valid ticket.
    for net in (holder, stranger):
        streams(net).produce(Reading)
    consumer = streams(seed).consume(Reading, require_ticket=validator)
    # Producers admit only consumers holding a valid ticket.
    gated = streams(seed).produce(Reading, stream_id="jwt-gated", require_ticket=validator)
    admitted = streams(holder).consume(Reading, stream_id="jwt-gated")
    refused = streams(stranger).consume(Reading, stream_id="jwt-gated")
    async with asyncio.timeout(deadline(15)):
        await wait_until(lambda: sees(seed, holder, stranger), 10, "catalog converged")
        await consumer.when.subscribed()
        await admitted.when.subscribed()
        await wait_until(
            lambda: any(ch.close_code == codes.STREAM_NOT_ALLOWED for ch in refused.producers()),
            10,
            "consumer without a ticket refused",
        )
        await gated.send(Reading("jwt", 1))
        assert await admitted.recv() == Reading("jwt", 1)
    assert connected_to(consumer) == {holder.peer_id}
    assert [ch.peer_id for ch in gated.consumers()] == [holder.peer_id]
    (refusal,) = refused.producers()
    assert refusal.error is not None and "missing" in refusal.error


async def test_jwt_expiry_disconnects_an_open_subscription(make_node: MakeNode) -> None:
    validator = JwtTicketValidator({"HS256": SECRET})
    a = await make_node()
    b = await make_node()
    jwt_for(b, lifetime=2)
    producer = streams(a).produce(Reading, require_ticket=validator)
    consumer = streams(b).consume(Reading)
    async with asyncio.timeout(deadline(15)):
        await producer.when.subscribed()
        await producer.when.unsubscribed()  # the ticket lapses within two seconds
        await wait_until(
            lambda: [ch.close_code for ch in consumer.producers()] == [codes.STREAM_NOT_ALLOWED],
            5,
            "consumer told NotAllowed",
        )
    assert consumer.producers()[0].state is ChannelState.TERMINATED


async def test_tag_changes_are_applied_both_ways(make_node: MakeNode) -> None:
    a = await make_node(tags=["sensor"])
    b = await make_node(tags=["reader"])
    # b consumes only from producers tagged "sensor"; a admits only consumers tagged "reader".
    producer = streams(a).produce(Reading, require=tagged("reader"))
    consumer = streams(b).consume(Reading, require=tagged("sensor"), backoff=FAST_RETRY)
    subscribed = producer.when.subscribed()
    async with asyncio.timeout(deadline(20)):
        await subscribed
        a.discovery.remove_tags("sensor")  # the consumer side drops the producer
        await producer.when.unsubscribed()
        a.discovery.add_tags("sensor")
        await subscribed  # re-armed: the next unmet -> met edge
        b.discovery.remove_tags("reader")  # the producer side revokes the consumer
        await producer.when.unsubscribed()
        await wait_until(
            lambda: [ch.close_code for ch in consumer.producers()] == [codes.STREAM_NOT_ALLOWED],
            5,
            "consumer told NotAllowed",
        )
        b.discovery.add_tags("reader")
        await subscribed
        await producer.send(Reading("again", 1))
        assert await consumer.recv() == Reading("again", 1)
