"""What producers and consumers need from their node, gathered by ``Streams``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from node.discovery import CatalogEvent, CatalogSnapshot, PeerInfo
from node.primitives import NetworkId, PeerId, StreamId
from node.streams.metrics import StreamMetrics
from node.transport import Endpoint


class DiscoveryApi(Protocol):
    """The part of ``net.discovery`` that streams use."""

    @property
    def catalog(self) -> CatalogSnapshot: ...

    def events(self) -> AsyncIterator[CatalogEvent]: ...

    def peer_info(self, peer_id: PeerId) -> PeerInfo | None: ...

    async def sync_with(self, peer_id: PeerId) -> int: ...

    def add_streams(self, *stream_ids: StreamId) -> Any: ...

    def remove_streams(self, *stream_ids: StreamId) -> Any: ...


@dataclass(frozen=True, slots=True)
class Context:
    network_id: NetworkId
    endpoint: Endpoint
    discovery: DiscoveryApi
    metrics: StreamMetrics
    rng: random.Random
    producer_closed: Callable[[Any], None]
    consumer_closed: Callable[[Any], None]
