"""The streams metrics (names after the seed's catalog, Prometheus conventions).

Counters move once per batch, not per datum, so metrics cost nothing on the hot path.
"""

from __future__ import annotations

from prometheus_client import Counter

from node.metrics import Metrics
from node.primitives import StreamId
from node.transport import codes


class StreamMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._network = network = metrics.network
        self.producers = metrics.gauge("mosaik_streams_producers_active", "Local producers").labels(
            network
        )
        self.consumers = metrics.gauge("mosaik_streams_consumers_active", "Local consumers").labels(
            network
        )
        self.subscribers = metrics.gauge(
            "mosaik_streams_subscriptions_active",
            "Connected channels by side (producer: remote consumers; consumer: producers)",
            ("side",),
        )
        self._accepted = metrics.counter(
            "mosaik_streams_consumers_accepted", "Subscriptions accepted by local producers"
        ).labels(network)
        self._rejected = metrics.counter(
            "mosaik_streams_consumers_rejected",
            "Subscriptions refused by local producers, by close code",
            ("reason",),
        )
        self._items_sent = metrics.counter(
            "mosaik_streams_items_sent", "Datums written to consumers", ("stream",)
        )
        self._bytes_sent = metrics.counter(
            "mosaik_streams_bytes_sent", "Encoded datum bytes written to consumers", ("stream",)
        )
        self._items_received = metrics.counter(
            "mosaik_streams_items_received", "Datums received from producers", ("stream",)
        )
        self._bytes_received = metrics.counter(
            "mosaik_streams_bytes_received", "Encoded datum bytes received", ("stream",)
        )
        self._dropped = metrics.counter(
            "mosaik_streams_items_dropped",
            "Datums dropped for lagging consumers or with no consumer",
            ("stream",),
        )

    def accepted(self) -> None:
        self._accepted.inc()

    def rejected(self, code: int) -> None:
        self._rejected.labels(self._network, codes.describe(code)).inc()

    def channel_opened(self, side: str) -> None:
        self.subscribers.labels(self._network, side).inc()

    def channel_closed(self, side: str) -> None:
        self.subscribers.labels(self._network, side).dec()

    def stream(self, stream_id: StreamId) -> StreamCounters:
        label = stream_id.short()
        return StreamCounters(
            self._items_sent.labels(self._network, label),
            self._bytes_sent.labels(self._network, label),
            self._items_received.labels(self._network, label),
            self._bytes_received.labels(self._network, label),
            self._dropped.labels(self._network, label),
        )


class StreamCounters:
    """The per-stream counters, resolved once per producer or consumer."""

    __slots__ = ("bytes_received", "bytes_sent", "dropped", "items_received", "items_sent")

    def __init__(
        self,
        items_sent: Counter,
        bytes_sent: Counter,
        items_received: Counter,
        bytes_received: Counter,
        dropped: Counter,
    ) -> None:
        self.items_sent = items_sent
        self.bytes_sent = bytes_sent
        self.items_received = items_received
        self.bytes_received = bytes_received
        self.dropped = dropped
