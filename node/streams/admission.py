"""Producer-side subscription state (sans I/O): who may subscribe, and who must leave.

Rules, in the order the producer applies them to a ``Subscribe`` request:
1. the request names our network, else DifferentNetwork;
2. the consumer is in our catalog, else UnknownPeer (it syncs its catalog with us and retries);
3. we produce the stream, else StreamNotFound;
4. fewer than ``max_consumers`` subscribers, else NoCapacity;
5. every ``require`` predicate accepts the consumer's ``PeerInfo``, else NotAllowed;
6. every ``require_ticket`` validator accepts one of its tickets, else NotAllowed.
An admitted subscriber stays while its entry keeps passing 5 and 6: a changed entry is
checked again (tags or tickets changed), and the earliest ticket expiry revokes it; a departed
peer is dropped with UnknownPeer. Time is unix seconds, passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from node.discovery.entry import PeerInfo
from node.primitives.digest import NetworkId
from node.primitives.keys import PeerId
from node.streams.conditions import PeerPredicate
from node.streams.config import ProducerConfig
from node.streams.messages import Subscribe
from node.tickets.errors import TicketsRejected
from node.tickets.gate import TicketGate
from node.tickets.validation import Expiry
from node.transport import codes


@dataclass(frozen=True, slots=True)
class Admitted:
    expiry: Expiry


@dataclass(frozen=True, slots=True)
class Refused:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Revoked:
    """An admitted subscriber that must be disconnected with ``code``."""

    key: int
    code: int
    reason: str


def route(
    request: Subscribe, network_id: NetworkId, peer: PeerInfo | None, producing: bool
) -> Refused | None:
    """Rules 1-3, checked before the request reaches a producer."""
    if request.network_id != network_id:
        return Refused(codes.DIFFERENT_NETWORK, f"this node is on network {network_id.short()}")
    if peer is None:
        return Refused(codes.UNKNOWN_PEER, "consumer is not in the producer's catalog")
    if not producing:
        return Refused(codes.STREAM_NOT_FOUND, f"stream {request.stream_id.short()} not produced")
    return None


def failed_predicate(predicates: tuple[PeerPredicate, ...], peer: PeerInfo) -> str | None:
    """Why ``peer`` fails ``predicates`` (a predicate that raises counts as a refusal)."""
    for index, predicate in enumerate(predicates):
        try:
            passed = predicate(peer)
        except Exception as exc:
            return f"require[{index}] raised {type(exc).__name__}: {exc}"
        if not passed:
            return f"peer does not satisfy require[{index}]"
    return None


class Admission:
    """The subscribers of one producer, keyed by channel, with their tickets' expiries."""

    __slots__ = ("_config", "_gate", "_subscribers")

    def __init__(self, config: ProducerConfig) -> None:
        self._config = config
        self._gate: TicketGate[int] = TicketGate(config.require_ticket)
        self._subscribers: dict[int, PeerInfo] = {}

    @property
    def subscribers(self) -> Mapping[int, PeerInfo]:
        return MappingProxyType(self._subscribers)

    def admit(self, key: int, peer: PeerInfo, now: float) -> Admitted | Refused:
        """Rules 4-6 for a new channel ``key``."""
        limit = self._config.max_consumers
        if limit is not None and len(self._subscribers) >= limit:
            return Refused(codes.STREAM_NO_CAPACITY, f"producer serves its maximum of {limit}")
        reason = failed_predicate(self._config.require, peer)
        if reason is not None:
            return Refused(codes.STREAM_NOT_ALLOWED, reason)
        try:
            expiry = self._gate.admit(key, peer.entry, now)
        except TicketsRejected as exc:
            return Refused(codes.STREAM_NOT_ALLOWED, f"tickets rejected: {exc}")
        self._subscribers[key] = peer
        return Admitted(expiry)

    def release(self, key: int) -> None:
        """Channel ``key`` ended for any reason."""
        self._subscribers.pop(key, None)
        self._gate.release(key)

    def peer_changed(self, peer: PeerInfo, now: float) -> list[Revoked]:
        """A newer entry of a peer: re-check its channels; revoke those that now fail."""
        revoked: list[Revoked] = []
        for key, held in list(self._subscribers.items()):
            if held.peer_id != peer.peer_id:
                continue
            self._subscribers[key] = peer
            reason = failed_predicate(self._config.require, peer)
            if reason is None:
                rejection = self._gate.entry_changed(key, peer.entry, now)
                reason = None if rejection is None else f"tickets rejected: {rejection}"
            if reason is not None:
                self.release(key)
                revoked.append(Revoked(key, codes.STREAM_NOT_ALLOWED, reason))
        return revoked

    def peer_departed(self, peer_id: PeerId) -> list[Revoked]:
        revoked = [
            Revoked(key, codes.UNKNOWN_PEER, "consumer left the producer's catalog")
            for key, held in self._subscribers.items()
            if held.peer_id == peer_id
        ]
        for item in revoked:
            self.release(item.key)
        return revoked

    def next_deadline(self) -> float | None:
        return self._gate.next_deadline()

    def tick(self, now: float) -> list[Revoked]:
        """Channels whose tickets expired by ``now``."""
        revoked: list[Revoked] = []
        for key in self._gate.expired(now):
            if self._subscribers.pop(key, None) is not None:
                revoked.append(Revoked(key, codes.STREAM_NOT_ALLOWED, "ticket expired"))
        return revoked
