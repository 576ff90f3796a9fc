"""Consumer-side subscription state (sans I/O): which producers to subscribe to, and when.

Rules (everything that decides a consumer's channels lives here):
- a producer is *eligible* when its catalog entry advertises the stream, every ``require``
  predicate accepts its ``PeerInfo`` and every ``require_ticket`` validator accepts one of its
  tickets; eligibility is re-checked on every newer entry and at the tickets' expiry;
- an eligible producer without a channel is dialled; one that stops being eligible (or
  departs) is dropped at once;
- a channel that ends is retried after a backoff delay that grows with failed attempts and
  resets once a channel connects, except:
  * UnknownPeer: the producer does not know us yet: sync catalogs with it, then retry at once
    (once per attempt; a second UnknownPeer backs off like any failure);
  * StreamNotFound, GracefulShutdown, DifferentNetwork, ProtocolViolation (a malformed
    datum or handshake): terminal until the producer's entry changes (a restart, a new
    version);
  * NotAllowed: terminal until the producer's entry or our own entry changes, and retried
    after the maximum backoff delay in case the producer's view of us changed;
- every channel attempt carries a generation number; reports about an older generation of a
  peer's channel are ignored, so a slow-dying connection cannot disturb its successor.
Time is unix seconds, passed in; jitter comes from an injected ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from node.discovery.entry import PeerInfo
from node.primitives.keys import PeerId
from node.streams.admission import failed_predicate
from node.streams.channels import ChannelState
from node.streams.config import ConsumerConfig
from node.tickets.errors import TicketsRejected
from node.tickets.gate import TicketGate
from node.transport import codes

TERMINAL_CODES = frozenset(
    {
        codes.STREAM_NOT_FOUND,
        codes.GRACEFUL_SHUTDOWN,
        codes.DIFFERENT_NETWORK,
        codes.PROTOCOL_VIOLATION,
        codes.STREAM_NOT_ALLOWED,
    }
)


@dataclass(frozen=True, slots=True)
class Dial:
    """Open channel ``generation`` to ``peer``."""

    peer: PeerInfo
    generation: int


@dataclass(frozen=True, slots=True)
class SyncCatalog:
    """Sync catalogs with ``peer_id``, then report ``synced`` for ``generation``."""

    peer_id: PeerId
    generation: int


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the channel to ``peer_id`` with ``code``; it is no longer wanted."""

    peer_id: PeerId
    code: int
    reason: str


Action = Dial | SyncCatalog | Drop


@dataclass(slots=True)
class _Channel:
    peer: PeerInfo
    state: ChannelState
    generation: int
    attempts: int = 0
    retry_at: float | None = None
    synced: bool = False
    close_code: int | None = None
    reason: str | None = None


class Subscriptions:
    """The channels one consumer wants, and what to do about each."""

    __slots__ = ("_channels", "_config", "_gate", "_generation", "_rng")

    def __init__(self, config: ConsumerConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._gate: TicketGate[PeerId] = TicketGate(config.require_ticket)
        self._channels: dict[PeerId, _Channel] = {}
        self._generation = 0

    # -- queries --------------------------------------------------------------------------

    def state(self, peer_id: PeerId) -> ChannelState | None:
        channel = self._channels.get(peer_id)
        return channel.state if channel else None

    def generation(self, peer_id: PeerId) -> int | None:
        channel = self._channels.get(peer_id)
        return channel.generation if channel else None

    def connected(self) -> Iterator[PeerInfo]:
        for channel in self._channels.values():
            if channel.state is ChannelState.CONNECTED:
                yield channel.peer

    def channels(self) -> Iterator[tuple[PeerInfo, ChannelState, int | None, str | None]]:
        """Every channel: (peer, state, last close code, last reason)."""
        for channel in self._channels.values():
            yield channel.peer, channel.state, channel.close_code, channel.reason

    def next_deadline(self) -> float | None:
        deadlines = [c.retry_at for c in self._channels.values() if c.retry_at is not None]
        ticket = self._gate.next_deadline()
        if ticket is not None:
            deadlines.append(ticket)
        return min(deadlines, default=None)

    # -- catalog --------------------------------------------------------------------------

    def peer_seen(self, peer: PeerInfo, now: float) -> list[Action]:
        """A producer candidate's current entry (discovered, updated, or from a snapshot)."""
        peer_id = peer.peer_id
        channel = self._channels.get(peer_id)
        refusal = self._refusal(peer, now)
        if refusal is not None:
            if channel is None:
                return []
            return self._forget(peer_id, codes.STREAM_NOT_ALLOWED, refusal)
        if channel is None:
            return [self._dial(_Channel(peer, ChannelState.CONNECTING, 0))]
        changed = not peer.entry.same_content(channel.peer.entry)
        channel.peer = peer
        if changed and channel.state in (ChannelState.WAITING, ChannelState.TERMINATED):
            return [self._dial(channel)]
        return []

    def peer_departed(self, peer_id: PeerId) -> list[Action]:
        if peer_id not in self._channels:
            return []
        return self._forget(peer_id, codes.SUCCESS, "producer left the catalog")

    def local_entry_changed(self) -> list[Action]:
        """Our own tags or tickets changed: producers that refused us may accept now."""
        return [
            self._dial(channel)
            for channel in self._channels.values()
            if channel.state is ChannelState.TERMINATED
            and channel.close_code == codes.STREAM_NOT_ALLOWED
        ]

    # -- channel reports ------------------------------------------------------------------

    def connected_to(self, peer_id: PeerId, generation: int) -> None:
        channel = self._current(peer_id, generation)
        if channel is not None:
            channel.state = ChannelState.CONNECTED
            channel.attempts = 0
            channel.synced = False
            channel.close_code = None
            channel.reason = None

    def closed(
        self, peer_id: PeerId, generation: int, code: int | None, reason: str, now: float
    ) -> list[Action]:
        """Channel ``generation`` ended: ``code`` is the close code (None: never connected
        at the transport level, e.g. unreachable)."""
        channel = self._current(peer_id, generation)
        if channel is None:
            return []
        channel.close_code = code
        channel.reason = reason
        channel.attempts += 1
        if code == codes.UNKNOWN_PEER and not channel.synced:
            channel.synced = True
            channel.state = ChannelState.CONNECTING
            return [SyncCatalog(peer_id, channel.generation)]
        backoff = self._config.backoff
        if code in TERMINAL_CODES:
            channel.state = ChannelState.TERMINATED
            channel.retry_at = now + backoff.maximum if code == codes.STREAM_NOT_ALLOWED else None
        else:
            channel.state = ChannelState.WAITING
            channel.retry_at = now + backoff.delay(channel.attempts, self._rng)
        return []

    def synced(self, peer_id: PeerId, generation: int) -> list[Action]:
        channel = self._current(peer_id, generation)
        return [] if channel is None else [self._dial(channel)]

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for peer_id in self._gate.expired(now):
            if peer_id in self._channels:
                actions += self._forget(peer_id, codes.STREAM_NOT_ALLOWED, "ticket expired")
        for channel in list(self._channels.values()):
            if channel.retry_at is not None and channel.retry_at <= now:
                actions.append(self._dial(channel))
        return actions

    def close(self) -> list[Action]:
        actions: list[Action] = []
        for peer_id in list(self._channels):
            actions += self._forget(peer_id, codes.GRACEFUL_SHUTDOWN, "consumer closed")
        return actions

    # -- internals ------------------------------------------------------------------------

    def _refusal(self, peer: PeerInfo, now: float) -> str | None:
        if self._config.stream_id not in peer.streams:
            return "producer no longer advertises the stream"
        reason = failed_predicate(self._config.require, peer)
        if reason is not None:
            return reason
        try:
            self._gate.admit(peer.peer_id, peer.entry, now)
        except TicketsRejected as exc:
            return f"tickets rejected: {exc}"
        return None

    def _dial(self, channel: _Channel) -> Dial:
        self._generation += 1
        channel.generation = self._generation
        channel.state = ChannelState.CONNECTING
        channel.retry_at = None
        self._channels[channel.peer.peer_id] = channel
        return Dial(channel.peer, channel.generation)

    def _forget(self, peer_id: PeerId, code: int, reason: str) -> list[Action]:
        channel = self._channels.pop(peer_id)
        self._gate.release(peer_id)
        if channel.state in (ChannelState.CONNECTING, ChannelState.CONNECTED):
            return [Drop(peer_id, code, reason)]
        return []

    def _current(self, peer_id: PeerId, generation: int) -> _Channel | None:
        channel = self._channels.get(peer_id)
        if channel is None or channel.generation != generation:
            return None
        return channel
