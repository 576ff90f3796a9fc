"""``net.streams``: typed producers and consumers, and the ``/mosaik/streams/1`` protocol."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from node._tasks import TaskScope
from node.errors import ConfigError
from node.metrics import Metrics
from node.primitives import NetworkId, StreamId
from node.streams._context import Context, DiscoveryApi
from node.streams.admission import route
from node.streams.builders import ConsumerBuilder, ProducerBuilder
from node.streams.conditions import Condition, PeerPredicate
from node.streams.config import (
    CONSUMER_ONLINE,
    DEFAULT_BUFFER_SIZE,
    DEFAULT_LAG_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    PRODUCER_ONLINE,
    Backoff,
    ConsumerConfig,
    Lagging,
    ProducerConfig,
    as_lagging,
    as_predicates,
    resolve_stream_id,
)
from node.streams.consumer import Consumer
from node.streams.errors import AlreadyExists
from node.streams.messages import ALPN, subscribe_decoder
from node.streams.metrics import StreamMetrics
from node.streams.producer import Producer
from node.tickets import RequireTicket, as_validators
from node.transport import Connection, Endpoint, codes

T = TypeVar("T")
log = logging.getLogger("mosaik.streams")

Require = PeerPredicate | Iterable[PeerPredicate] | None


class _Node(Protocol):
    """What ``Streams`` reads from the ``Network`` it belongs to."""

    network_id: NetworkId
    endpoint: Endpoint
    metrics: Metrics

    @property
    def discovery(self) -> DiscoveryApi: ...


class Streams:
    """The node's streams: ``produce``/``consume`` typed datums, found through discovery.

    A datum type's default stream id is ``Digest.from_name(f"{T.__module__}.{T.__qualname__}")``;
    pass ``stream_id=`` (a name or a digest) to pick another.
    """

    def __init__(self, net: _Node) -> None:
        self._network_id = net.network_id
        self._endpoint = net.endpoint
        self._discovery = net.discovery
        self._metrics = StreamMetrics(net.metrics)
        self._context = Context(
            network_id=net.network_id,
            endpoint=net.endpoint,
            discovery=self._discovery,
            metrics=self._metrics,
            rng=random.Random(),
            producer_closed=self._producer_closed,
            consumer_closed=self._consumer_closed,
        )
        self._producers: dict[StreamId, Producer[Any]] = {}
        self._consumers: set[Consumer[Any]] = set()
        self._tasks = TaskScope("streams")
        self._closed = False

    async def start(self) -> None:
        """Serve ``/mosaik/streams/1`` and follow the catalog."""
        self._endpoint.register(ALPN, self._accept)
        self._tasks.spawn(self._follow_catalog(), "catalog")
        await asyncio.sleep(0)  # let the follower subscribe before anyone produces

    async def close(self) -> None:
        """Close every producer and consumer (consumers are told GracefulShutdown)."""
        if self._closed:
            return
        self._closed = True
        for producer in list(self._producers.values()):
            await producer.close()
        for consumer in list(self._consumers):
            await consumer.close()
        await self._tasks.aclose()

    # -- producers ------------------------------------------------------------------------

    def produce(
        self,
        datum_type: type[T],
        *,
        stream_id: str | StreamId | None = None,
        require: Require = None,
        require_ticket: RequireTicket = None,
        online_when: Condition | None = None,
        max_consumers: int | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        lagging: Lagging | str = Lagging.DISCONNECT,
        lag_timeout: float = DEFAULT_LAG_TIMEOUT,
        undelivered: Callable[[T], object] | None = None,
    ) -> Producer[T]:
        """The producer of ``datum_type``'s stream on this node, created on first use.

        A second call for the same stream id returns the existing producer (its options stay
        those it was created with). Options:
        ``require``: predicates on a consumer's ``PeerInfo``, all must pass;
        ``require_ticket``: validators, each must accept one of the consumer's tickets;
        ``online_when``: when ``send`` may deliver (default ``minimum_of(1)`` consumer);
        ``max_consumers``: refuse more with NoCapacity; ``buffer_size``: datums buffered for
        the slowest consumer; ``lagging``: ``"disconnect"`` a consumer that cannot keep up
        (TooSlow) or ``"drop"`` its oldest datums, once it has held a full buffer without
        reading for ``lag_timeout`` seconds (until then ``send`` waits for it);
        ``undelivered``: called with datums sent while online with no consumer at all.
        """
        resolved = resolve_stream_id(datum_type, stream_id)
        existing = self._producers.get(resolved)
        if existing is not None:
            if existing.datum_type is not datum_type:
                raise AlreadyExists(
                    f"stream {resolved.short()} is produced here for "
                    f"{existing.datum_type!r}, not {datum_type!r}"
                )
            return existing
        return self._create_producer(
            datum_type,
            stream_id=resolved,
            require=require,
            require_ticket=require_ticket,
            online_when=online_when,
            max_consumers=max_consumers,
            buffer_size=buffer_size,
            lagging=lagging,
            lag_timeout=lag_timeout,
            undelivered=undelivered,
        )

    def producer(self, datum_type: type[T]) -> ProducerBuilder[T]:
        """A builder whose ``build()`` raises ``AlreadyExists`` instead of sharing."""
        return ProducerBuilder(self._create_producer, datum_type)

    def _create_producer(
        self,
        datum_type: type[T],
        *,
        stream_id: str | StreamId | None = None,
        require: Require = None,
        require_ticket: RequireTicket = None,
        online_when: Condition | None = None,
        max_consumers: int | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        lagging: Lagging | str = Lagging.DISCONNECT,
        lag_timeout: float = DEFAULT_LAG_TIMEOUT,
        undelivered: Callable[[T], object] | None = None,
    ) -> Producer[T]:
        self._check_open()
        resolved = resolve_stream_id(datum_type, stream_id)
        if resolved in self._producers:
            raise AlreadyExists(f"this node already produces stream {resolved.short()}")
        config = ProducerConfig(
            stream_id=resolved,
            datum_type=datum_type,
            require=as_predicates(require),
            require_ticket=as_validators(require_ticket),
            online_when=online_when if online_when is not None else PRODUCER_ONLINE,
            max_consumers=max_consumers,
            buffer_size=buffer_size,
            lagging=as_lagging(lagging),
            lag_timeout=lag_timeout,
            undelivered=undelivered,
        )
        producer: Producer[T] = Producer(self._context, config)
        self._producers[resolved] = producer
        self._metrics.producers.inc()
        self._discovery.add_streams(resolved)
        return producer

    def _producer_closed(self, producer: Producer[Any]) -> None:
        if self._producers.get(producer.stream_id) is producer:
            del self._producers[producer.stream_id]
            self._metrics.producers.dec()
            self._discovery.remove_streams(producer.stream_id)

    # -- consumers ------------------------------------------------------------------------

    def consume(
        self,
        datum_type: type[T],
        *,
        stream_id: str | StreamId | None = None,
        require: Require = None,
        require_ticket: RequireTicket = None,
        online_when: Condition | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        backoff: Backoff | None = None,
    ) -> Consumer[T]:
        """A new consumer of ``datum_type``'s stream, subscribing to every producer in the
        catalog that passes ``require`` and ``require_ticket`` (see ``produce``).

        ``online_when`` defaults to ``minimum_of(0)``; ``buffer_size`` bounds the datums
        received and not yet read; ``backoff`` paces reconnections.
        """
        self._check_open()
        config = ConsumerConfig(
            stream_id=resolve_stream_id(datum_type, stream_id),
            datum_type=datum_type,
            require=as_predicates(require),
            require_ticket=as_validators(require_ticket),
            online_when=online_when if online_when is not None else CONSUMER_ONLINE,
            buffer_size=buffer_size,
            backoff=backoff if backoff is not None else Backoff(),
        )
        consumer: Consumer[T] = Consumer(self._context, config)
        self._consumers.add(consumer)
        self._metrics.consumers.inc()
        consumer._start()
        return consumer

    def consumer(self, datum_type: type[T]) -> ConsumerBuilder[T]:
        """A builder form of ``consume`` (``require`` and ``require_ticket`` chain)."""
        return ConsumerBuilder(self.consume, datum_type)

    def _consumer_closed(self, consumer: Consumer[Any]) -> None:
        if consumer in self._consumers:
            self._consumers.discard(consumer)
            self._metrics.consumers.dec()

    # -- state ----------------------------------------------------------------------------

    def producers(self) -> list[Producer[Any]]:
        return list(self._producers.values())

    def consumers(self) -> list[Consumer[Any]]:
        return list(self._consumers)

    def statistics(self) -> dict[str, Any]:
        """What ``mosaik node inspect`` shows about streams."""
        return {
            "producers": [p.statistics() for p in self._producers.values()],
            "consumers": [c.statistics() for c in self._consumers],
        }

    def local_entry_changed(self) -> None:
        """Our own tags or tickets changed: consumers retry producers that refused us."""
        for consumer in list(self._consumers):
            consumer._local_entry_changed()

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("streams: the network is closed")

    # -- protocol -------------------------------------------------------------------------

    async def _accept(self, conn: Connection) -> None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                stream = await conn.accept_stream()
                request = await stream.recv_as(subscribe_decoder)
        except TimeoutError:
            conn.close(codes.PROTOCOL_VIOLATION, "no subscription request in time")
            return
        if request is None:
            conn.close(codes.PROTOCOL_VIOLATION, "stream ended before the subscription request")
            return
        peer = self._discovery.peer_info(conn.peer_id)
        producer = self._producers.get(request.stream_id)
        refusal = route(request, self._network_id, peer, producer is not None)
        if refusal is not None or producer is None or peer is None:
            if refusal is not None:
                self._metrics.rejected(refusal.code)
                conn.close(refusal.code, refusal.reason)
            return
        await producer._serve(conn, stream, peer)

    async def _follow_catalog(self) -> None:
        async for event in self._discovery.events():
            targets: list[Producer[Any] | Consumer[Any]] = [*self._producers.values()]
            targets += self._consumers
            for target in targets:
                try:
                    target._on_event(event)
                except Exception:
                    log.exception("%r failed to handle %s", target, type(event).__name__)
