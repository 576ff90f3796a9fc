"""The discovery protocol core: catalog, gossip, anti-entropy sync, neighbours and pings.

No sockets, clock, tasks or randomness of its own: the shell feeds inputs with the current wall
clock in ms (``now_ms``) and a seeded ``random.Random`` is injected; every input returns the
``Output`` actions to apply, in order. The shell's first call is ``tick(now)``; afterwards it
calls ``tick`` whenever the last ``ScheduleTimer`` comes due.

How the protocol works (the rules live here and in ``catalog.py``):
- neighbours: discovery connections, symmetric, between ``target_neighbours`` and
  ``max_neighbours``. Below the target the core dials random catalog peers (bootstrap peers
  included; with no neighbour left this is the rejoin); above the maximum it disconnects random
  ones. Every ``shuffle_interval`` it dials one random non-neighbour and, once connected, drops
  another neighbour, so the overlay stays a random graph and the sides of a healed partition
  meet again.
- gossip (plumtree-lite): an entry version or departure the catalog accepts becomes a rumour.
  Once per ``gossip_interval`` round the rumours go in full to ``fanout`` random neighbours
  and as ids (IHave) to the others; a node that hears of a rumour by id and does not get it
  within ``graft_timeout`` pulls it (IWant) from an announcer. The catalog is the seen-cache,
  so each version is forwarded once and a rumour reaches everyone in O(log N) rounds.
- re-announce: every ``announce_interval`` (+/- jitter) the local entry is re-signed with a new
  version, which renews its TTL everywhere; local changes are announced at once.
- anti-entropy: the dialling side of every new connection, and ``sync_with``, sends all its
  fresh signed entries (SyncRequest); the other side merges them and answers with its entries
  the initiator did not send (SyncResponse). Either side's first chunk leads with its own
  entry: it shows the shell which incarnation (``start_ms``) of the peer a link reaches.
  Each peer's requests are answered at most ``sync_burst`` at once, then one per
  ``sync_refill_ms`` (a token bucket per peer): a sync request is small and its answer is the
  catalog, so a buggy or hostile neighbour must not be able to ask for it in a loop. A request
  beyond the limit gets ``SyncBusy`` (with when to retry) instead, and the initiator's sync
  fails at once with that delay: its caller decides whether to wait, and the refused peer
  synced with this node moments ago anyway, or it would not be out of tokens.
- pings: each neighbour every ``ping_interval``; RTT smoothed per RFC 6298; the Pong carries
  the responder's current entry.
- restarts: an accepted entry with a later ``start_ms`` than the one held means the peer runs a
  new process (``PeerRestarted``): the shell closes what leads to the old one, and a neighbour
  whose link it closed (``stale_link_closed``) is dialled again at once; a sync in flight over
  that link runs again over the new one.
Bad input from the network is logged and dropped; it never raises.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from node.discovery.catalog import Catalog, CatalogSnapshot, Outcome, Verdict
from node.discovery.config import DiscoveryConfig
from node.discovery.departure import GracefulDeparture
from node.discovery.entry import PeerEntry, SignedPeerEntry
from node.discovery.errors import InvalidDeparture
from node.discovery.events import CatalogEvent, PeerDeparted, PeerDiscovered, PeerUpdated
from node.discovery.local import LocalChange, LocalEntry
from node.discovery.messages import (
    DiscoveryMessage,
    Gossip,
    IHave,
    IWant,
    Ping,
    Pong,
    RumourId,
    SyncBusy,
    SyncRequest,
    SyncResponse,
    chunked,
    message_decoder,
)
from node.discovery.neighbours import Neighbours, jittered
from node.discovery.outputs import (
    Dial,
    Disconnect,
    DisconnectReason,
    EmitEvent,
    Output,
    PeerRestarted,
    ScheduleTimer,
    SendMessage,
    SyncCompleted,
    SyncFailed,
)
from node.discovery.pings import Pings
from node.discovery.ratelimit import TokenBuckets
from node.discovery.rumours import Rumour, Rumours
from node.discovery.sync import Syncs
from node.errors import DecodeError
from node.primitives.digest import NetworkId
from node.primitives.keys import PeerId, SecretKey

_log = logging.getLogger("node.discovery")

_LOUD = frozenset(
    {Verdict.INVALID, Verdict.OTHER_NETWORK, Verdict.FROM_FUTURE, Verdict.UNSUPPORTED_PROTOCOL}
)
"""Rejections that point at a faulty or hostile peer (the others are normal gossip overlap)."""
_ID_BYTES = 64
_MAX_PULL = 4096


@dataclass(frozen=True, slots=True)
class DiscoveryStatistics:
    """Gauges and counters for the metrics exporter (counters only grow)."""

    catalog_size: int
    hints: int
    neighbours: int
    dialing: int
    rumours_pending: int
    rumours_missing: int
    peers_discovered: int
    peers_updated: int
    peers_departed: int
    syncs_started: int
    syncs_completed: int
    syncs_failed: int
    syncs_served: int
    syncs_refused: int
    messages_sent: int
    messages_received: int
    messages_dropped: int
    entries_rejected: int


@dataclass(slots=True)
class _Counters:
    peers_discovered: int = 0
    peers_updated: int = 0
    peers_departed: int = 0
    syncs_started: int = 0
    syncs_completed: int = 0
    syncs_failed: int = 0
    syncs_served: int = 0
    syncs_refused: int = 0
    """Sync requests answered with ``SyncBusy``: the peer asked more often than allowed."""
    messages_sent: int = 0
    messages_received: int = 0
    messages_dropped: int = 0
    entries_rejected: int = 0


class DiscoveryCore:
    """One node's discovery protocol state machine. See the module docstring for the rules."""

    def __init__(
        self,
        secret_key: SecretKey,
        network_id: NetworkId,
        *,
        now_ms: int,
        rng: random.Random,
        config: DiscoveryConfig | None = None,
        addrs: Iterable[str] = (),
    ) -> None:
        self.config = config = config or DiscoveryConfig()
        self._key = secret_key
        self._rng = rng
        self._local = LocalEntry(
            secret_key, network_id, now_ms, addrs=addrs, max_size=config.max_entry_bytes
        )
        self._catalog = Catalog(
            network_id,
            secret_key.peer_id,
            ttl_ms=config.ttl_ms,
            max_drift_ms=config.max_drift_ms,
            max_entry_size=config.max_entry_bytes,
        )
        self._rumours = Rumours(config.gossip_interval_ms)
        self._view = Neighbours(config, rng, now_ms)
        self._links = self._view.links
        self._syncs = Syncs(config, rng)
        self._sync_limits = TokenBuckets(config.sync_burst, config.sync_refill_ms)
        self._pings = Pings(config, rng)
        self._announce_at = now_ms + self._jittered(
            config.announce_interval_ms, config.announce_jitter
        )
        self._scheduled: int | None = None
        self._closed = False
        self._out: list[Output] = []
        self._counts = _Counters()

    # ================================================================== views

    @property
    def peer_id(self) -> PeerId:
        return self._key.peer_id

    @property
    def local_entry(self) -> SignedPeerEntry:
        return self._local.signed

    @property
    def catalog(self) -> Catalog:
        """The catalog, for reading: change it only through this core's inputs."""
        return self._catalog

    @property
    def neighbours(self) -> tuple[PeerId, ...]:
        return tuple(self._links)

    @property
    def closed(self) -> bool:
        return self._closed

    def snapshot(self, *, max_rtt_ms: float | None = None) -> CatalogSnapshot:
        return self._catalog.snapshot(max_rtt_ms=max_rtt_ms)

    def statistics(self) -> DiscoveryStatistics:
        return DiscoveryStatistics(
            catalog_size=len(self._catalog),
            hints=len(self._catalog.hint_ids()),
            neighbours=len(self._links),
            dialing=self._view.dialing,
            rumours_pending=self._rumours.pending,
            rumours_missing=self._rumours.missing,
            **asdict(self._counts),
        )

    def next_deadline(self) -> int | None:
        """When ``tick`` must next be called (ms), or None once closed."""
        if self._closed:
            return None
        candidates = [self._announce_at, *self._view.deadlines()]
        for optional in (
            self._rumours.round_at(),
            self._rumours.next_graft(),
            self._catalog.next_expiry(),
        ):
            if optional is not None:
                candidates.append(optional)
        candidates.extend(self._pings.deadlines(self._links))
        candidates.extend(self._syncs.deadlines())
        return min(candidates)

    # ================================================================== inputs

    def tick(self, now_ms: int) -> list[Output]:
        """Run whatever is due at ``now_ms``."""
        if self._closed:
            return []
        self._scheduled = None  # the shell's timer fired (or was overtaken): always re-arm it
        for departed in self._catalog.purge(now_ms):
            self._emit_event(departed)
        for peer in self._view.expired_dials(now_ms):
            self._dial_failed(peer, now_ms, "dial timed out")
        self._expire_syncs(now_ms)
        self._pull_missing(now_ms)
        self._run_pings(now_ms)
        if self._view.shuffle_at <= now_ms:
            shuffle = self._view.to_shuffle(now_ms, self._known_peers(), self._has_address)
            if shuffle is not None:
                self._out.append(Dial(shuffle, self._addresses(shuffle)))
        if self._announce_at <= now_ms:
            self._local.refresh(now_ms)
            self._announce_local(now_ms)
        if self._view.maintain_at is not None and self._view.maintain_at <= now_ms:
            for peer in self._view.to_dial(now_ms, self._known_peers(), self._has_address):
                self._out.append(Dial(peer, self._addresses(peer)))
            self._drop(self._view.victims(now_ms, keep=None, busy=self._syncs))
        round_at = self._rumours.round_at()
        if round_at is not None and round_at <= now_ms:
            self._gossip_round(now_ms)
        return self._finish()

    def receive(self, peer: PeerId, body: bytes, now_ms: int) -> list[Output]:
        """A frame body arrived from ``peer`` (authenticated by the transport)."""
        if self._closed:
            return []
        try:
            message = message_decoder.decode(body)
        except DecodeError as exc:
            self._counts.messages_dropped += 1
            _log.warning("dropped discovery message from %s: %s", peer.short(), exc)
            return self._finish()
        return self.handle_message(peer, message, now_ms)

    def handle_message(self, peer: PeerId, message: DiscoveryMessage, now_ms: int) -> list[Output]:
        """A decoded message arrived from ``peer``."""
        if self._closed:
            return []
        self._counts.messages_received += 1
        match message:
            case Gossip(entries, departures):
                for data in entries:
                    self._merge_entry(data, peer, now_ms)
                for data in departures:
                    self._merge_departure(data, peer, now_ms)
            case IHave(rumours):
                self._on_ihave(peer, rumours, now_ms)
            case IWant(rumours):
                self._on_iwant(peer, rumours)
            case SyncRequest(nonce, entries, last):
                self._on_sync_request(peer, nonce, entries, last, now_ms)
            case SyncResponse(nonce, entries, last):
                self._on_sync_response(peer, nonce, entries, last, now_ms)
            case SyncBusy(nonce, retry_after_ms):
                self._on_sync_busy(peer, nonce, retry_after_ms, now_ms)
            case Ping(nonce):
                self._send(peer, Pong(nonce, self._local.signed.encode()))
            case Pong(nonce, entry):
                self._on_pong(peer, nonce, entry, now_ms)
        return self._finish()

    def peer_connected(self, peer: PeerId, now_ms: int, *, outbound: bool) -> list[Output]:
        """A discovery connection to ``peer`` is up; ``outbound`` if this node dialled it."""
        if self._closed:
            return []
        if peer == self.peer_id:
            self._out.append(Disconnect(peer, DisconnectReason.SELF))
            return self._finish()
        shuffled = self._view.connected(peer, now_ms)
        if outbound or peer in self._syncs.wanted:
            self._syncs.wanted.pop(peer, None)
            if peer not in self._syncs:
                self._start_sync(peer, now_ms, attempt=1)
        self._drop(self._view.victims(now_ms, keep=peer, busy=self._syncs, shuffled=shuffled))
        return self._finish()

    def peer_disconnected(self, peer: PeerId, now_ms: int) -> list[Output]:
        """The connection to ``peer`` ended (either side closed it, or it failed)."""
        if self._closed:
            return []
        self._view.disconnected(peer, now_ms)
        self._pings.forget(peer)
        if self._syncs.drop(peer):
            self._sync_failed(peer, "connection closed before the sync finished")
        return self._finish()

    def stale_link_closed(self, peer: PeerId, now_ms: int) -> list[Output]:
        """The shell closed the link to ``peer`` because it reaches an incarnation older than
        the one ``PeerRestarted`` announced: dial the new process at once to keep the peer as
        a neighbour, and rerun a sync that was in flight there once it is connected."""
        if self._closed:
            return []
        self._view.disconnected(peer, now_ms)
        self._pings.forget(peer)
        resync = self._syncs.drop(peer)
        if not self._view.is_dialing(peer):
            if not self._has_address(peer):
                if resync:
                    self._sync_failed(peer, "connection closed before the sync finished")
                return self._finish()
            self._view.dial_started(peer, now_ms, shuffle=False)
            self._out.append(Dial(peer, self._addresses(peer)))
        if resync:
            self._syncs.wanted[peer] = None
        return self._finish()

    def dial_failed(self, peer: PeerId, now_ms: int) -> list[Output]:
        if self._closed:
            return []
        self._dial_failed(peer, now_ms, "dial failed")
        return self._finish()

    def update_local(self, change: LocalChange, now_ms: int) -> list[Output]:
        """Change the local entry; an effective change is signed and announced at once.

        Raises ``InvalidEntry`` (leaving the entry unchanged) if the result would be invalid.
        """
        if self._closed:
            return []
        if self._local.apply(change, now_ms):
            self._announce_local(now_ms)
        return self._finish()

    def add_bootstrap(self, peer: PeerId, addrs: tuple[str, ...], now_ms: int) -> list[Output]:
        """A peer to (re)join through: dialled now if neighbours are missing, and on rejoin."""
        if self._closed or peer == self.peer_id:
            return []
        self._view.bootstrap[peer] = addrs
        self._catalog.insert_hint(
            PeerEntry(
                protocol=self._local.entry.protocol,
                network_id=self._catalog.network_id,
                peer_id=peer,
                start_ms=0,
                update_ms=0,
                addrs=addrs,
            )
        )
        self._view.request_maintenance(now_ms)
        return self._finish()

    def insert_hint(self, entry: PeerEntry, now_ms: int) -> list[Output]:
        """An unsigned entry (e.g. from LAN discovery): addresses to dial, never gossiped."""
        if self._closed:
            return []
        if self._catalog.insert_hint(entry):
            self._view.request_maintenance(now_ms)
        return self._finish()

    def feed(self, signed: SignedPeerEntry, now_ms: int) -> list[Output]:
        """Insert an entry obtained out of band; gossiped on like any new version."""
        if self._closed:
            return []
        self._accept_entry(self._catalog.insert(signed, now_ms), None, now_ms)
        return self._finish()

    def sync_with(self, peer: PeerId, now_ms: int) -> list[Output]:
        """Run a catalog sync with ``peer`` (dialling it if needed); ends in
        ``SyncCompleted`` or ``SyncFailed``."""
        if self._closed:
            return []
        if peer == self.peer_id:
            self._sync_failed(peer, "cannot sync with the local node")
        elif peer in self._links:
            if peer not in self._syncs:
                self._start_sync(peer, now_ms, attempt=1)
        elif not self._addresses(peer):
            self._sync_failed(peer, "no known address")
        else:
            self._syncs.wanted[peer] = None
            if not self._view.is_dialing(peer):
                self._view.dial_started(peer, now_ms, shuffle=False)
                self._out.append(Dial(peer, self._addresses(peer)))
        return self._finish()

    def shutdown(self, now_ms: int) -> list[Output]:
        """Leave: send a signed departure to every neighbour, then disconnect them."""
        if self._closed:
            return []
        notice = GracefulDeparture.sign(
            self._key, self._catalog.network_id, self._local.entry.version, now_ms
        ).encode()
        for peer in list(self._links):
            self._send(peer, Gossip(departures=(notice,)))
            self._out.append(Disconnect(peer, DisconnectReason.SHUTDOWN))
        for peer in self._syncs.clear():
            self._sync_failed(peer, "shutting down")
        self._links.clear()
        self._closed = True
        out, self._out = self._out, []
        return out

    # ================================================================== merging

    def _merge_entry(self, data: bytes, source: PeerId, now_ms: int) -> bool:
        if self._catalog.holds_encoding(data):
            return False  # the common case in syncs and overlapping gossip: nothing to do
        return self._accept_entry(self._catalog.insert_encoded(data, now_ms), source, now_ms)

    def _accept_entry(self, outcome: Outcome, source: PeerId | None, now_ms: int) -> bool:
        if not outcome.accepted:
            self._note_rejection("peer entry", outcome.verdict, outcome.reason, source)
            return False
        signed = outcome.signed
        assert signed is not None  # accepted outcomes carry the entry
        start_ms, update_ms = signed.version
        rumour_id = RumourId(signed.peer_id, start_ms, update_ms, departed=False)
        self._rumours.resolved(rumour_id)
        self._rumours.push(Rumour(rumour_id, signed.encode(), source), now_ms)
        event = outcome.event
        if isinstance(event, PeerUpdated) and event.entry.start_ms > event.previous.start_ms:
            self._out.append(PeerRestarted(signed.peer_id, event.entry.start_ms))
        if event is not None:
            self._emit_event(event)
        return True

    def _merge_departure(self, data: bytes, source: PeerId, now_ms: int) -> None:
        try:
            notice = GracefulDeparture.decode(data)
        except InvalidDeparture as exc:
            self._note_rejection("departure", Verdict.INVALID, exc.reason, source)
            return
        outcome = self._catalog.depart(notice, now_ms)
        if not outcome.accepted:
            self._note_rejection("departure", outcome.verdict, outcome.reason, source)
            return
        start_ms, update_ms = notice.version
        rumour_id = RumourId(notice.peer_id, start_ms, update_ms, departed=True)
        self._rumours.resolved(rumour_id)
        self._rumours.push(Rumour(rumour_id, data, source), now_ms)
        if outcome.event is not None:
            self._emit_event(outcome.event)

    def _note_rejection(
        self, what: str, verdict: Verdict, reason: str, source: PeerId | None
    ) -> None:
        if verdict not in _LOUD:
            return
        self._counts.entries_rejected += 1
        origin = "local feed" if source is None else f"peer {source.short()}"
        detail = f" ({reason})" if reason else ""
        _log.warning("dropped %s from %s: %s%s", what, origin, verdict.value, detail)

    def _emit_event(self, event: CatalogEvent) -> None:
        match event:
            case PeerDiscovered():
                self._counts.peers_discovered += 1
            case PeerUpdated():
                self._counts.peers_updated += 1
            case PeerDeparted():
                self._counts.peers_departed += 1
                self._pings.forget(event.peer_id)
        self._out.append(EmitEvent(event))

    # ================================================================== gossip

    def _announce_local(self, now_ms: int) -> None:
        signed = self._local.signed
        start_ms, update_ms = signed.version
        rumour_id = RumourId(signed.peer_id, start_ms, update_ms, departed=False)
        self._rumours.push(Rumour(rumour_id, signed.encode(), None), now_ms)
        self._announce_at = now_ms + self._jittered(
            self.config.announce_interval_ms, self.config.announce_jitter
        )

    def _gossip_round(self, now_ms: int) -> None:
        rumours = self._rumours.take_round(now_ms)
        news: dict[PeerId, list[Rumour]] = {}
        for peer in self._links:
            items = [r for r in rumours if r.source != peer and r.id.peer_id != peer]
            if items:
                news[peer] = items
        eager = set(self._rng.sample(list(news), min(self.config.fanout, len(news))))
        step = max(1, self.config.max_message_bytes // _ID_BYTES)
        for peer, items in news.items():
            if peer in eager:
                self._send_gossip(peer, items)
                continue
            # Local news goes to every neighbour in full; relayed news only by id.
            self._send_gossip(peer, [r for r in items if r.source is None])
            ids = [r.id for r in items if r.source is not None]
            for i in range(0, len(ids), step):
                self._send(peer, IHave(tuple(ids[i : i + step])))

    def _send_gossip(self, peer: PeerId, rumours: Sequence[Rumour]) -> None:
        departures = tuple(r.data for r in rumours if r.id.departed)
        if departures:
            self._send(peer, Gossip(departures=departures))
        entries = [r.data for r in rumours if not r.id.departed]
        for chunk in chunked(entries, self.config.max_message_bytes):
            self._send(peer, Gossip(entries=chunk))

    def _on_ihave(self, peer: PeerId, rumours: Sequence[RumourId], now_ms: int) -> None:
        due = now_ms + self.config.graft_timeout_ms
        for rumour_id in rumours:
            if rumour_id.peer_id == self.peer_id:
                continue
            if not self._catalog.holds(
                rumour_id.peer_id, rumour_id.version, departed=rumour_id.departed
            ):
                self._rumours.announced(rumour_id, peer, due)

    def _pull_missing(self, now_ms: int) -> None:
        wants: dict[PeerId, list[RumourId]] = {}
        retry_at = now_ms + self.config.graft_timeout_ms
        for rumour_id in self._rumours.grafts_due(now_ms):
            if self._catalog.holds(
                rumour_id.peer_id, rumour_id.version, departed=rumour_id.departed
            ):
                self._rumours.resolved(rumour_id)
                continue
            announcer = self._rumours.next_announcer(rumour_id, self._links.__contains__)
            if announcer is not None:
                wants.setdefault(announcer, []).append(rumour_id)
                self._rumours.retry_later(rumour_id, retry_at)
        for peer, rumour_ids in wants.items():
            self._send(peer, IWant(tuple(rumour_ids)))

    def _on_iwant(self, peer: PeerId, rumours: Sequence[RumourId]) -> None:
        found: dict[bytes, Rumour] = {}
        for rumour_id in rumours[:_MAX_PULL]:
            data: bytes | None = None
            if rumour_id.departed:
                notice = self._catalog.departure(rumour_id.peer_id)
                if notice is not None and notice.version >= rumour_id.version:
                    data = notice.encode()
            elif rumour_id.peer_id == self.peer_id:
                data = self._local.signed.encode()
            else:
                signed = self._catalog.signed(rumour_id.peer_id)
                if signed is not None and signed.version >= rumour_id.version:
                    data = signed.encode()
            if data is not None:
                found[data] = Rumour(rumour_id, data, None)
        if found:
            self._send_gossip(peer, list(found.values()))

    # ================================================================== sync

    def _start_sync(self, peer: PeerId, now_ms: int, *, attempt: int) -> None:
        nonce = self._syncs.start(peer, now_ms, attempt)
        if attempt == 1:
            self._counts.syncs_started += 1
        entries = [self._local.signed.encode(), *self._catalog.encoded_entries(now_ms)]
        chunks = list(chunked(entries, self.config.max_message_bytes))
        for i, chunk in enumerate(chunks):
            self._send(peer, SyncRequest(nonce, chunk, last=i == len(chunks) - 1))

    def _on_sync_request(
        self, peer: PeerId, nonce: int, entries: Sequence[bytes], last: bool, now_ms: int
    ) -> None:
        for data in entries:
            self._merge_entry(data, peer, now_ms)
        received = self._syncs.receive(peer, nonce, entries, last)
        if received is None or peer not in self._links:
            return  # no answer to a peer this node just dropped: it could not be delivered
        retry_after_ms = self._sync_limits.take(peer, now_ms)
        if retry_after_ms is not None:
            # Its entries were merged all the same: only the (large) answer is withheld.
            self._counts.syncs_refused += 1
            _log.debug(
                "refused a sync from %s: asked too often, next answered in %d ms",
                peer.short(),
                retry_after_ms,
            )
            self._send(peer, SyncBusy(nonce, retry_after_ms))
        else:
            self._counts.syncs_served += 1
            reply = [self._local.signed.encode()]
            reply.extend(e for e in self._catalog.encoded_entries(now_ms) if e not in received)
            chunks = list(chunked(reply, self.config.max_message_bytes))
            for i, chunk in enumerate(chunks):
                self._send(peer, SyncResponse(nonce, chunk, last=i == len(chunks) - 1))
        self._settle(peer, now_ms)

    def _on_sync_response(
        self, peer: PeerId, nonce: int, entries: Sequence[bytes], last: bool, now_ms: int
    ) -> None:
        accepted = sum(self._merge_entry(data, peer, now_ms) for data in entries)
        total = self._syncs.answered(peer, nonce, accepted, last)
        if total is not None:
            self._settle(peer, now_ms)
            self._counts.syncs_completed += 1
            self._out.append(SyncCompleted(peer, total))

    def _on_sync_busy(self, peer: PeerId, nonce: int, retry_after_ms: int, now_ms: int) -> None:
        if not self._syncs.refused(peer, nonce):
            return  # a late answer to a sync that timed out, or was never sent
        self._settle(peer, now_ms)
        self._sync_failed(
            peer, f"peer {peer.short()} is busy: retry after {retry_after_ms} ms", retry_after_ms
        )

    def _expire_syncs(self, now_ms: int) -> None:
        for peer, attempt in self._syncs.expired(now_ms):
            if peer in self._links and attempt < self.config.sync_attempts:
                self._start_sync(peer, now_ms, attempt=attempt + 1)
            else:
                self._sync_failed(peer, f"no answer after {attempt} attempt(s)")

    def _sync_failed(self, peer: PeerId, reason: str, retry_after_ms: int | None = None) -> None:
        self._counts.syncs_failed += 1
        self._out.append(SyncFailed(peer, reason, retry_after_ms))

    # ================================================================== pings

    def _run_pings(self, now_ms: int) -> None:
        send, timed_out = self._pings.due(now_ms, self._links, self._rto)
        for peer in timed_out:
            self._catalog.rtt_timed_out(peer)
        for peer, nonce in send:
            self._send(peer, Ping(nonce))

    def _rto(self, peer: PeerId) -> float:
        estimator = self._catalog.rtt(peer)
        return 1000.0 if estimator is None else estimator.rto_ms

    def _on_pong(self, peer: PeerId, nonce: int, entry: bytes, now_ms: int) -> None:
        self._merge_entry(entry, peer, now_ms)
        sample = self._pings.answered(peer, nonce, now_ms)
        if sample is not None and peer in self._catalog:
            self._catalog.observe_rtt(peer, sample)

    # ================================================================== neighbours

    def _known_peers(self) -> list[PeerId]:
        return self._catalog.peer_ids() + self._catalog.hint_ids()

    def _addresses(self, peer: PeerId) -> tuple[str, ...]:
        return self._catalog.addresses(peer) or self._view.bootstrap.get(peer, ())

    def _has_address(self, peer: PeerId) -> bool:
        return bool(self._addresses(peer))

    def _dial_failed(self, peer: PeerId, now_ms: int, reason: str) -> None:
        if self._view.dial_failed(peer, now_ms) and peer in self._syncs.wanted:
            del self._syncs.wanted[peer]
            self._sync_failed(peer, reason)

    def _settle(self, peer: PeerId, now_ms: int) -> None:
        if self._view.settle(peer):
            self._drop(self._view.victims(now_ms, keep=peer, busy=self._syncs))

    def _drop(self, victims: Sequence[PeerId]) -> None:
        for peer in victims:
            self._pings.forget(peer)
            self._syncs.drop(peer)
            self._out.append(Disconnect(peer, DisconnectReason.VIEW_FULL))

    # ================================================================== plumbing

    def _send(self, peer: PeerId, message: DiscoveryMessage) -> None:
        self._counts.messages_sent += 1
        self._out.append(SendMessage(peer, message))

    def _jittered(self, interval_ms: int, jitter: float) -> int:
        return jittered(self._rng, interval_ms, jitter)

    def _finish(self) -> list[Output]:
        deadline = self.next_deadline()
        if deadline is not None and deadline != self._scheduled:
            self._scheduled = deadline
            self._out.append(ScheduleTimer(deadline))
        out, self._out = self._out, []
        return out
