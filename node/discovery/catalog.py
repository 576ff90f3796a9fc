"""The catalog: every peer this node knows, as signed entries plus unsigned local hints.

Rules (everything that decides what the catalog holds lives here):
- a signed entry is taken only if it belongs to our network and protocol, is not about the
  local node, is fresh (``update_ms`` within ``ttl`` of now and at most ``max_drift`` ahead),
  and is newer than both the entry held for that peer and any departure notice of that peer;
- a replayed older version never rolls back a newer one, and bytes that fail verification are
  rejected before they are compared with anything, so a tampered entry never evicts a good one;
- hints (unsigned entries from bootstrap lists or LAN discovery) are only addresses to dial:
  they are never synced and a signed entry of the same peer replaces them;
- an entry expires ``ttl`` after its ``update_ms``: peers re-announce to stay; ``purge`` drops
  expired entries and reports them as ``PeerDeparted(EXPIRED)``;
- a graceful departure removes the peer and is remembered until entries of that version
  would have expired anyway, so a late copy of the old entry cannot resurrect the peer.
The catalog never raises on remote input: every insertion returns an ``Outcome``.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from node.discovery.departure import GracefulDeparture
from node.discovery.entry import (
    MAX_ENTRY_SIZE,
    PROTOCOL_VERSION,
    PeerEntry,
    PeerInfo,
    SignedPeerEntry,
    Version,
)
from node.discovery.errors import InvalidEntry
from node.discovery.events import (
    CatalogEvent,
    DepartureReason,
    PeerDeparted,
    PeerDiscovered,
    PeerUpdated,
)
from node.discovery.rtt import RttEstimator
from node.primitives.digest import NetworkId
from node.primitives.keys import PeerId

DEFAULT_TTL_MS = 300_000
DEFAULT_MAX_DRIFT_MS = 50_000


class Verdict(enum.Enum):
    """What the catalog did with an entry or departure notice."""

    DISCOVERED = "discovered"
    UPDATED = "updated"
    REFRESHED = "refreshed"
    """A newer version with the same content: only the TTL moved."""
    DEPARTED = "departed"
    """A departure notice was recorded (and removed the peer if it was held)."""
    DUPLICATE = "duplicate"
    OLDER = "older than the version held"
    WITHDRAWN = "not newer than the peer's departure notice"
    STALE = "stale"
    FROM_FUTURE = "timestamped beyond the allowed clock drift"
    OTHER_NETWORK = "from another network"
    UNSUPPORTED_PROTOCOL = "unsupported protocol version"
    LOCAL = "about the local node"
    INVALID = "invalid"

    @property
    def accepted(self) -> bool:
        return self in _ACCEPTED


_ACCEPTED = frozenset({Verdict.DISCOVERED, Verdict.UPDATED, Verdict.REFRESHED, Verdict.DEPARTED})


@dataclass(frozen=True, slots=True)
class Outcome:
    """The catalog's answer to one entry or notice; ``reason`` explains a rejection."""

    verdict: Verdict
    reason: str = ""
    event: CatalogEvent | None = None
    signed: SignedPeerEntry | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict.accepted


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """An immutable view of the catalog at one moment, ordered by peer id."""

    peers: Mapping[PeerId, PeerInfo]
    hints: Mapping[PeerId, PeerEntry]

    def get(self, peer_id: PeerId) -> PeerInfo | None:
        return self.peers.get(peer_id)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self.peers

    def __iter__(self) -> Iterator[PeerInfo]:
        return iter(self.peers.values())

    def __len__(self) -> int:
        return len(self.peers)


_ENTRY, _TOMBSTONE = 0, 1


class Catalog:
    """Signed peer entries, hints, departures and RTT estimates of one network (sans I/O)."""

    def __init__(
        self,
        network_id: NetworkId,
        local_peer: PeerId,
        *,
        ttl_ms: int = DEFAULT_TTL_MS,
        max_drift_ms: int = DEFAULT_MAX_DRIFT_MS,
        max_entry_size: int = MAX_ENTRY_SIZE,
    ) -> None:
        self.network_id = network_id
        self.local_peer = local_peer
        self.ttl_ms = ttl_ms
        self.max_drift_ms = max_drift_ms
        self.max_entry_size = max_entry_size
        self._entries: dict[PeerId, SignedPeerEntry] = {}
        self._by_encoding: dict[bytes, PeerId] = {}
        self._hints: dict[PeerId, PeerEntry] = {}
        self._departures: dict[PeerId, GracefulDeparture] = {}
        self._rtt: dict[PeerId, RttEstimator] = {}
        # (expires_ms, kind, peer bytes, version): checked lazily against what is still held.
        self._expiry: list[tuple[int, int, bytes, Version]] = []

    # ------------------------------------------------------------------ entries

    def insert_encoded(self, data: bytes, now_ms: int) -> Outcome:
        """Verify and insert an encoded signed entry (bytes seen before cost a lookup only)."""
        held_by = self._by_encoding.get(data)
        if held_by is not None:
            return Outcome(Verdict.DUPLICATE, signed=self._entries[held_by])
        try:
            signed = SignedPeerEntry.decode(data, max_size=self.max_entry_size)
        except InvalidEntry as exc:
            return Outcome(Verdict.INVALID, exc.reason)
        return self.insert(signed, now_ms)

    def insert(self, signed: SignedPeerEntry, now_ms: int) -> Outcome:
        entry = signed.entry
        rejection = self._check(entry, entry.update_ms, now_ms)
        if rejection is not None:
            return Outcome(rejection[0], rejection[1], signed=signed)
        peer = entry.peer_id
        departure = self._departures.get(peer)
        if departure is not None and entry.version <= departure.version:
            return Outcome(
                Verdict.WITHDRAWN,
                f"version {entry.version} <= departed version {departure.version}",
                signed=signed,
            )
        held = self._entries.get(peer)
        event: CatalogEvent | None
        if held is None:
            verdict, event = Verdict.DISCOVERED, PeerDiscovered(entry)
        elif entry.version == held.version:
            return Outcome(Verdict.DUPLICATE, signed=held)
        elif entry.version < held.version:
            return Outcome(
                Verdict.OLDER, f"version {entry.version} < held {held.version}", signed=signed
            )
        elif entry.same_content(held.entry):
            verdict, event = Verdict.REFRESHED, None
        else:
            verdict, event = Verdict.UPDATED, PeerUpdated(entry, held.entry)
        if held is not None:
            del self._by_encoding[held.encode()]
        self._entries[peer] = signed
        self._by_encoding[signed.encode()] = peer
        self._hints.pop(peer, None)
        self._departures.pop(peer, None)
        heapq.heappush(
            self._expiry, (entry.update_ms + self.ttl_ms, _ENTRY, peer.bytes, entry.version)
        )
        return Outcome(verdict, event=event, signed=signed)

    def depart(self, departure: GracefulDeparture, now_ms: int) -> Outcome:
        """Apply a verified departure notice: remove the peer unless a newer entry is held."""
        rejection = self._check_departure(departure, now_ms)
        if rejection is not None:
            return Outcome(rejection[0], rejection[1])
        peer = departure.peer_id
        recorded = self._departures.get(peer)
        if recorded is not None and departure.version <= recorded.version:
            return Outcome(Verdict.DUPLICATE)
        held = self._entries.get(peer)
        if held is not None and held.version > departure.version:
            return Outcome(
                Verdict.OLDER, f"departed version {departure.version} < held {held.version}"
            )
        self._departures[peer] = departure
        heapq.heappush(
            self._expiry,
            (departure.version[1] + self.ttl_ms, _TOMBSTONE, peer.bytes, departure.version),
        )
        event = None
        if held is not None:
            self._remove(peer)
            event = PeerDeparted(held.entry, DepartureReason.GRACEFUL)
        return Outcome(Verdict.DEPARTED, event=event)

    def _check(self, entry: PeerEntry, update_ms: int, now_ms: int) -> tuple[Verdict, str] | None:
        if entry.network_id != self.network_id:
            return Verdict.OTHER_NETWORK, f"network {entry.network_id.short()}"
        if entry.protocol != PROTOCOL_VERSION:
            return Verdict.UNSUPPORTED_PROTOCOL, f"protocol {entry.protocol}"
        if entry.peer_id == self.local_peer:
            return Verdict.LOCAL, ""
        return self._check_time(update_ms, now_ms)

    def _check_time(self, stamp_ms: int, now_ms: int) -> tuple[Verdict, str] | None:
        if stamp_ms + self.ttl_ms <= now_ms:
            return Verdict.STALE, f"{now_ms - stamp_ms} ms old, TTL {self.ttl_ms} ms"
        if stamp_ms > now_ms + self.max_drift_ms:
            return Verdict.FROM_FUTURE, f"{stamp_ms - now_ms} ms ahead of local clock"
        return None

    def _check_departure(
        self, departure: GracefulDeparture, now_ms: int
    ) -> tuple[Verdict, str] | None:
        if departure.network_id != self.network_id:
            return Verdict.OTHER_NETWORK, f"network {departure.network_id.short()}"
        if departure.peer_id == self.local_peer:
            return Verdict.LOCAL, ""
        if departure.timestamp_ms < now_ms - self.max_drift_ms:
            return Verdict.STALE, f"notice is {now_ms - departure.timestamp_ms} ms old"
        return self._check_time(departure.timestamp_ms, now_ms)

    def _remove(self, peer: PeerId) -> SignedPeerEntry | None:
        signed = self._entries.pop(peer, None)
        if signed is not None:
            del self._by_encoding[signed.encode()]
        self._rtt.pop(peer, None)
        return signed

    # ------------------------------------------------------------------ expiry

    def purge(self, now_ms: int) -> list[PeerDeparted]:
        """Drop entries and departure notices whose TTL has passed."""
        departed: list[PeerDeparted] = []
        while self._expiry and self._expiry[0][0] <= now_ms:
            _, kind, raw, version = heapq.heappop(self._expiry)
            peer = PeerId(raw)
            if kind == _ENTRY:
                held = self._entries.get(peer)
                if held is not None and held.version == version:
                    self._remove(peer)
                    departed.append(PeerDeparted(held.entry, DepartureReason.EXPIRED))
            else:
                notice = self._departures.get(peer)
                if notice is not None and notice.version == version:
                    del self._departures[peer]
        return departed

    def next_expiry(self) -> int | None:
        """When ``purge`` next has something to do (ms), if ever."""
        while self._expiry:
            at, kind, raw, version = self._expiry[0]
            peer = PeerId(raw)
            held: SignedPeerEntry | GracefulDeparture | None = (
                self._entries.get(peer) if kind == _ENTRY else self._departures.get(peer)
            )
            if held is not None and held.version == version:
                return at
            heapq.heappop(self._expiry)
        return None

    # ------------------------------------------------------------------ hints

    def insert_hint(self, entry: PeerEntry) -> bool:
        """Remember an unsigned entry (addresses to dial); ignored if a signed one is held."""
        peer = entry.peer_id
        if peer == self.local_peer or entry.network_id != self.network_id:
            return False
        if peer in self._entries:
            return False
        self._hints[peer] = entry
        return True

    def remove_hint(self, peer_id: PeerId) -> bool:
        return self._hints.pop(peer_id, None) is not None

    # ------------------------------------------------------------------ RTT

    def observe_rtt(self, peer_id: PeerId, sample_ms: float) -> None:
        estimator = self._rtt.get(peer_id)
        if estimator is None:
            estimator = self._rtt[peer_id] = RttEstimator()
        estimator.observe(sample_ms)

    def rtt_timed_out(self, peer_id: PeerId) -> None:
        estimator = self._rtt.get(peer_id)
        if estimator is not None:
            estimator.backoff()

    def rtt(self, peer_id: PeerId) -> RttEstimator | None:
        return self._rtt.get(peer_id)

    # ------------------------------------------------------------------ views

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._entries

    def holds_encoding(self, data: bytes) -> bool:
        """Whether ``data`` is exactly the encoding of an entry held."""
        return data in self._by_encoding

    def signed(self, peer_id: PeerId) -> SignedPeerEntry | None:
        return self._entries.get(peer_id)

    def departure(self, peer_id: PeerId) -> GracefulDeparture | None:
        return self._departures.get(peer_id)

    def hint(self, peer_id: PeerId) -> PeerEntry | None:
        return self._hints.get(peer_id)

    def get(self, peer_id: PeerId) -> PeerInfo | None:
        signed = self._entries.get(peer_id)
        return None if signed is None else self._info(signed)

    def holds(self, peer_id: PeerId, version: Version, *, departed: bool) -> bool:
        """Whether this catalog already reflects the entry (or departure) of that version."""
        held = self._entries.get(peer_id)
        notice = self._departures.get(peer_id)
        if departed:
            return (notice is not None and notice.version >= version) or (
                held is not None and held.version > version
            )
        return (held is not None and held.version >= version) or (
            notice is not None and notice.version >= version
        )

    def peer_ids(self) -> list[PeerId]:
        return list(self._entries)

    def hint_ids(self) -> list[PeerId]:
        return list(self._hints)

    def addresses(self, peer_id: PeerId) -> tuple[str, ...]:
        signed = self._entries.get(peer_id)
        if signed is not None:
            return signed.entry.addrs
        hint = self._hints.get(peer_id)
        return () if hint is None else hint.addrs

    def encoded_entries(self, now_ms: int) -> list[bytes]:
        """Every fresh signed entry, encoded: what a catalog sync sends."""
        return [
            signed.encode()
            for signed in self._entries.values()
            if signed.entry.update_ms + self.ttl_ms > now_ms
        ]

    def peers(self, *, max_rtt_ms: float | None = None) -> list[PeerInfo]:
        """Signed peers ordered by id; with ``max_rtt_ms`` only those measured at or below it."""
        infos = [self._info(self._entries[peer]) for peer in sorted(self._entries)]
        if max_rtt_ms is None:
            return infos
        return [info for info in infos if info.rtt_ms is not None and info.rtt_ms <= max_rtt_ms]

    def snapshot(self, *, max_rtt_ms: float | None = None) -> CatalogSnapshot:
        peers = {info.peer_id: info for info in self.peers(max_rtt_ms=max_rtt_ms)}
        hints = {peer: self._hints[peer] for peer in sorted(self._hints)}
        return CatalogSnapshot(MappingProxyType(peers), MappingProxyType(hints))

    def _info(self, signed: SignedPeerEntry) -> PeerInfo:
        estimator = self._rtt.get(signed.peer_id)
        return PeerInfo(signed.entry, None if estimator is None else estimator.srtt_ms)
