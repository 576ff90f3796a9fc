"""What ``producer.consumers()`` and ``consumer.producers()`` report: one record per channel."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from node.discovery.entry import PeerInfo
from node.primitives.keys import PeerId


class ChannelState(enum.Enum):
    CONNECTING = "connecting"
    """Dialling, syncing the catalog, or waiting for the producer's StartStream."""
    CONNECTED = "connected"
    WAITING = "waiting"
    """Disconnected; reconnecting after a backoff delay."""
    TERMINATED = "terminated"
    """Refused or failed for good; retried only when the producer's entry changes (or, for a
    refusal, after the maximum backoff delay)."""


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A snapshot of one channel. ``datums``/``bytes`` count this connection's payload (the
    encoded datums, without framing); ``dropped`` counts datums a producer skipped for a
    lagging consumer; ``close_code``/``error`` say why the last connection ended."""

    peer: PeerInfo
    state: ChannelState
    datums: int = 0
    bytes: int = 0
    dropped: int = 0
    connected_at: float | None = None
    close_code: int | None = None
    error: str | None = None

    @property
    def peer_id(self) -> PeerId:
        return self.peer.peer_id

    @property
    def uptime(self) -> float:
        """Seconds since the channel connected; 0 when it is not connected."""
        if self.connected_at is None or self.state is not ChannelState.CONNECTED:
            return 0.0
        return max(0.0, time.monotonic() - self.connected_at)
