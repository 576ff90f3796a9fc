"""The discovery protocol's exceptions.

    MosaikError
    └── DiscoveryError         the discovery layer
        ├── InvalidEntry       a peer entry that is malformed, oversized or not signed by its peer
        ├── InvalidDeparture   a departure notice that is malformed or not signed by its peer
        └── SyncRefused        a peer refused a catalog sync: asked too often, retry later

The invalid ones carry ``reason``: what exactly is wrong, naming the field or check that
failed. Entries and departures received from the network that fail these checks are dropped by
the catalog with a log line; they never escape the protocol core as exceptions.
"""

from __future__ import annotations

from node.errors import MosaikError
from node.primitives.keys import PeerId


class DiscoveryError(MosaikError):
    """A failure of the discovery layer."""


class InvalidEntry(DiscoveryError):
    """A signed peer entry that cannot be trusted: ``reason`` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid peer entry: {reason}")
        self.reason = reason


class InvalidDeparture(DiscoveryError):
    """A graceful departure notice that cannot be trusted: ``reason`` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid departure notice: {reason}")
        self.reason = reason


class SyncRefused(DiscoveryError):
    """``peer`` refused a catalog sync because this node asked for them more often than it
    answers; it answers the next one after ``retry_after_ms``."""

    def __init__(self, peer: PeerId, retry_after_ms: int) -> None:
        super().__init__(
            f"sync with {peer.short()} refused: the peer is busy, retry after {retry_after_ms} ms"
        )
        self.peer = peer
        self.retry_after_ms = retry_after_ms
