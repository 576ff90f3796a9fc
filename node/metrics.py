"""Prometheus metrics: one registry per node so several nodes can share a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from node.primitives.digest import NetworkId


class Metrics:
    """The node's metric registry; every metric carries ``network=<short id>``."""

    def __init__(self, network_id: NetworkId) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.network = network_id.short()

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, ("network", *labels), registry=self.registry)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, ("network", *labels), registry=self.registry)

    def histogram(
        self, name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = ()
    ) -> Histogram:
        if buckets:
            return Histogram(
                name, doc, ("network", *labels), registry=self.registry, buckets=buckets
            )
        return Histogram(name, doc, ("network", *labels), registry=self.registry)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
