"""The collections metrics (after the seed's ``<type>.size`` and ``syncs``), labelled by
collection kind and short store id."""

from __future__ import annotations

from collections.abc import Callable

from node.metrics import Metrics


class CollectionMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._network = metrics.network
        self._size = metrics.gauge(
            "mosaik_collections_size", "Elements in the local replica", ("kind", "store")
        )
        self._syncs = metrics.counter(
            "mosaik_collections_syncs",
            "Snapshots installed into a local replica (catch-up or restart)",
            ("kind", "store"),
        )

    def track(self, kind: str, store: str, size: Callable[[], int]) -> None:
        self._size.labels(self._network, kind, store).set_function(size)
        self._syncs.labels(self._network, kind, store)

    def untrack(self, kind: str, store: str) -> None:
        self._size.remove(self._network, kind, store)
        self._syncs.remove(self._network, kind, store)

    def synced(self, kind: str, store: str) -> None:
        self._syncs.labels(self._network, kind, store).inc()
