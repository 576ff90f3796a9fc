"""What the discovery core asks its shell to do: typed actions, applied in order."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from node.discovery.events import CatalogEvent
from node.discovery.messages import DiscoveryMessage
from node.primitives.keys import PeerId


class DisconnectReason(enum.Enum):
    VIEW_FULL = "neighbour view full"
    SHUTDOWN = "shutting down"
    SELF = "connected to itself"


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Send ``message`` on the discovery connection to ``peer`` (always a connected peer)."""

    peer: PeerId
    message: DiscoveryMessage


@dataclass(frozen=True, slots=True)
class EmitEvent:
    event: CatalogEvent


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    """Call ``tick`` at ``at_ms`` (replaces any earlier request)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Dial:
    """Open a discovery connection to ``peer``; report ``peer_connected`` or ``dial_failed``."""

    peer: PeerId
    addrs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection to ``peer`` once messages already sent to it are flushed."""

    peer: PeerId
    reason: DisconnectReason


@dataclass(frozen=True, slots=True)
class PeerRestarted:
    """The catalog learnt that ``peer`` runs a new process, started at ``start_ms``.

    Connections opened to its older incarnation lead to a dead process that QUIC only notices
    after its idle timeout: the shell closes them, and reports a discovery link it closed for
    that reason with ``stale_link_closed`` so the core dials the new process.
    """

    peer: PeerId
    start_ms: int


@dataclass(frozen=True, slots=True)
class SyncCompleted:
    """A catalog sync this node initiated with ``peer`` finished."""

    peer: PeerId
    accepted: int
    """Entries received in the sync that were new to the catalog."""


@dataclass(frozen=True, slots=True)
class SyncFailed:
    """A catalog sync this node initiated with ``peer`` ended without the peer's entries."""

    peer: PeerId
    reason: str
    retry_after_ms: int | None = None
    """Set when the peer refused the sync as too frequent: it answers one after this long."""


Output: TypeAlias = (
    SendMessage
    | EmitEvent
    | ScheduleTimer
    | Dial
    | Disconnect
    | PeerRestarted
    | SyncCompleted
    | SyncFailed
)
