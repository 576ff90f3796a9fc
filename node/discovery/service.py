"""The discovery shell: runs ``DiscoveryCore`` on the node's QUIC endpoint.

One actor-like loop of control: every input (a frame, a connection, a timer, an API call) is
fed to the core and its outputs are applied at once, in order, by ``_apply``. Each neighbour
link is one connection on ALPN ``/mosaik/discovery/1`` with one stream (the dialler opens it
and speaks first); a writer task per link drains its queue in batches, so the core never waits
on the network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from node._tasks import TaskScope
from node.discovery.addrs import advertised_addrs
from node.discovery.catalog import CatalogSnapshot
from node.discovery.config import DiscoveryConfig
from node.discovery.core import DiscoveryCore
from node.discovery.entry import PeerInfo, SignedPeerEntry
from node.discovery.errors import SyncRefused
from node.discovery.events import CatalogEvent
from node.discovery.local import (
    AddGroups,
    AddStreams,
    AddTags,
    AddTicket,
    LocalChange,
    RemoveGroups,
    RemoveStreams,
    RemoveTags,
    RemoveTicket,
)
from node.discovery.messages import message_decoder, sender_start_ms
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
from node.errors import DecodeError, MosaikError
from node.metrics import Metrics
from node.primitives.codec import encode
from node.primitives.digest import Digest
from node.primitives.keys import PeerId
from node.primitives.ticket import Ticket
from node.transport import Connection, Endpoint, FramedStream, PeerAddr, SocketAddr, codes
from node.transport.errors import ConnectError, TransportError

log = logging.getLogger("mosaik.discovery")

DISCOVERY_ALPN = "/mosaik/discovery/1"
# Frames queued for a neighbour beyond this mean it stopped reading: drop the link.
_MAX_QUEUED = 10_000
_SHUTDOWN_FLUSH_S = 1.0
# What a message adds to the entries it carries (tag, nonce, flags): within this, generously.
_ENVELOPE_BYTES = 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def config_with_ttl(seconds: float, base: DiscoveryConfig | None = None) -> DiscoveryConfig:
    """A config whose peers expire after ``seconds``, re-announcing at a third of it."""
    base = base or DiscoveryConfig()
    ttl_ms = int(seconds * 1000)
    return dataclasses.replace(
        base, ttl_ms=ttl_ms, announce_interval_ms=min(base.announce_interval_ms, ttl_ms // 3)
    )


def _fit_frames(config: DiscoveryConfig, max_frame: int) -> DiscoveryConfig:
    """``config`` with messages split small enough for the transport's frames (a sync answer
    or gossip batch is split into messages of ``max_message_bytes``)."""
    budget = max(max_frame - _ENVELOPE_BYTES, 2 * config.max_entry_bytes)
    if config.max_message_bytes <= budget:
        return config
    if budget + _ENVELOPE_BYTES > max_frame:
        log.warning(
            "transport max_frame (%d bytes) is below two discovery entries of max_entry_bytes "
            "(%d): large entries or catalogs will not get through",
            max_frame,
            config.max_entry_bytes,
        )
    return dataclasses.replace(config, max_message_bytes=budget)


@dataclass(eq=False)
class _Link:
    peer: PeerId
    conn: Connection
    stream: FramedStream
    outbound: bool
    start_ms: int | None = None
    """The start time (incarnation) of the peer process at the other end, once it showed it."""
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    closing: bool = False

    def observe(self, body: bytes) -> None:
        """Learn the peer's incarnation from a frame it sent, if the frame shows it."""
        if self.start_ms is not None:
            return
        try:
            message = message_decoder.decode(body)
        except DecodeError:
            return  # the core counts and logs it
        self.start_ms = sender_start_ms(self.peer, message)

    def newer_than(self, other: _Link) -> bool:
        """Whether this link reaches a later incarnation of the peer than ``other`` does."""
        if self.start_ms is None or other.start_ms is None:
            return False
        return self.start_ms > other.start_ms

    def started_before(self, start_ms: int) -> bool:
        """Whether this link reaches an incarnation of the peer older than ``start_ms``: the
        one the peer showed on it, or, if it showed none yet, any that ran when it opened."""
        if self.start_ms is not None:
            return self.start_ms < start_ms
        return self.conn.opened_at * 1000 < start_ms


class Discovery:
    """``net.discovery``: the catalog of peers and how this node appears in it."""

    def __init__(
        self,
        endpoint: Endpoint,
        metrics: Metrics,
        *,
        config: DiscoveryConfig | None = None,
        advertise: Iterable[str] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.config = _fit_frames(config or DiscoveryConfig(), endpoint.max_frame)
        self.core = DiscoveryCore(
            endpoint.secret_key,
            endpoint.network_id,
            now_ms=_now_ms(),
            rng=rng or random.Random(),
            config=self.config,
            addrs=advertised_addrs(endpoint.local_addr, advertise),
        )
        self._links: dict[PeerId, _Link] = {}
        self._subscribers: set[asyncio.Queue[CatalogEvent]] = set()
        self._syncs: dict[PeerId, list[asyncio.Future[int]]] = {}
        self._deadline: int | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._local_listeners: list[Callable[[], None]] = []
        self._tasks = TaskScope("discovery")
        self._closed = False
        metrics.registry.register(_DiscoveryCollector(self, metrics.network))

    # -- lifetime -------------------------------------------------------------------------

    async def start(self, bootstrap: Iterable[PeerAddr] = ()) -> None:
        self.endpoint.register(DISCOVERY_ALPN, self._accept)
        now = _now_ms()
        self._apply(self.core.tick(now))
        for seed in bootstrap:
            self.add_hint(seed.peer_id, (str(seed.addr),))
        self._tasks.spawn(self._timer(), "timer")

    async def close(self) -> None:
        """Leave gracefully: departure notices go out to every neighbour before links close."""
        if self._closed:
            return
        self._closed = True
        self._apply(self.core.shutdown(_now_ms()))
        links = list(self._links.values())
        if links:
            try:
                async with asyncio.timeout(_SHUTDOWN_FLUSH_S):
                    await asyncio.gather(*(self._flushed(link) for link in links))
            except TimeoutError:
                log.info("some neighbours did not take the departure notice in time")
        for link in list(self._links.values()):
            link.conn.close(codes.GRACEFUL_SHUTDOWN, "node leaving")
        await self._tasks.aclose()
        for waiters in self._syncs.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(MosaikError("discovery closed"))

    # -- reading the catalog --------------------------------------------------------------

    @property
    def catalog(self) -> CatalogSnapshot:
        return self.core.snapshot()

    def snapshot(self, *, max_rtt_ms: float | None = None) -> CatalogSnapshot:
        return self.core.snapshot(max_rtt_ms=max_rtt_ms)

    def peer_info(self, peer: PeerId) -> PeerInfo | None:
        return self.core.catalog.get(peer)

    @property
    def local_entry(self) -> SignedPeerEntry:
        return self.core.local_entry

    @property
    def neighbours(self) -> tuple[PeerId, ...]:
        return self.core.neighbours

    async def events(self) -> AsyncIterator[CatalogEvent]:
        """Catalog events from now on, in order, until discovery closes."""
        queue: asyncio.Queue[CatalogEvent] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            while not self._closed:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    async def changed(self) -> None:
        """Wait for the next catalog change (any event)."""
        self._changed.clear()
        await self._changed.wait()

    # -- changing the local entry ---------------------------------------------------------

    def add_tags(self, *tags: str | Digest) -> None:
        self._update(AddTags(frozenset(Digest.from_name(t) for t in tags)))

    def remove_tags(self, *tags: str | Digest) -> None:
        self._update(RemoveTags(frozenset(Digest.from_name(t) for t in tags)))

    def add_streams(self, *streams: Digest) -> None:
        self._update(AddStreams(frozenset(streams)))

    def remove_streams(self, *streams: Digest) -> None:
        self._update(RemoveStreams(frozenset(streams)))

    def add_groups(self, *groups: Digest) -> None:
        self._update(AddGroups(frozenset(groups)))

    def remove_groups(self, *groups: Digest) -> None:
        self._update(RemoveGroups(frozenset(groups)))

    def add_ticket(self, ticket: Ticket) -> None:
        self._update(AddTicket(ticket))

    def remove_ticket(self, ticket_id: Digest) -> None:
        self._update(RemoveTicket(ticket_id))

    def add_hint(self, peer: PeerId, addrs: tuple[str, ...]) -> None:
        """An unsigned address for ``peer`` (bootstrap, LAN): dialled, never gossiped."""
        self._apply(self.core.add_bootstrap(peer, addrs, _now_ms()))

    def feed(self, signed: SignedPeerEntry) -> None:
        """Insert an entry obtained out of band (verified on construction)."""
        self._apply(self.core.feed(signed, _now_ms()))

    def on_local_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of the local entry (tags, tickets, ...)."""
        self._local_listeners.append(listener)

    def _update(self, change: LocalChange) -> None:
        before = self.core.local_entry.version
        self._apply(self.core.update_local(change, _now_ms()))
        if self.core.local_entry.version != before:
            for listener in self._local_listeners:
                listener()

    # -- talking to peers -----------------------------------------------------------------

    async def sync_with(self, peer: PeerId) -> int:
        """Exchange catalogs with ``peer`` now; returns how many entries were new here.

        Raises ``SyncRefused`` (with ``retry_after_ms``) at once if ``peer`` refuses because
        this node asks it for syncs too often, ``TransportError`` if the sync fails otherwise.
        """
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._syncs.setdefault(peer, []).append(waiter)
        self._apply(self.core.sync_with(peer, _now_ms()))
        return await waiter

    async def dial(self, peer: PeerId, alpn: str) -> Connection:
        """A pooled connection to a catalog peer, trying each address it advertises."""
        addrs = self.core.catalog.addresses(peer)
        if not addrs:
            raise ConnectError(f"peer {peer.short()} has no known address")
        errors: list[str] = []
        for addr in addrs:
            try:
                return await self.endpoint.connection(PeerAddr(peer, SocketAddr.parse(addr)), alpn)
            except ConnectError as exc:
                errors.append(f"{addr}: {exc}")
        raise ConnectError(f"cannot reach peer {peer.short()}: {'; '.join(errors)}")

    # -- the shell ------------------------------------------------------------------------

    def _apply(self, outputs: list[Output]) -> None:
        for output in outputs:
            match output:
                case SendMessage(peer, message):
                    link = self._links.get(peer)
                    if link is not None and not link.closing:
                        if link.queue.qsize() >= _MAX_QUEUED:
                            log.warning("neighbour %s stopped reading: dropping it", peer.short())
                            link.conn.close(codes.UNEXPECTED_CLOSE, "too slow")
                        else:
                            link.queue.put_nowait(encode(message))
                case EmitEvent(event):
                    for queue in self._subscribers:
                        queue.put_nowait(event)
                    self._changed.set()
                case ScheduleTimer(at_ms):
                    self._deadline = at_ms
                    self._wake.set()
                case Dial(peer, addrs):
                    if not self._closed:
                        self._tasks.spawn(self._dial(peer, addrs), f"dial/{peer.short()}")
                case Disconnect(peer, reason):
                    link = self._links.get(peer)
                    if link is not None and not link.closing:
                        link.closing = True
                        code = (
                            codes.GRACEFUL_SHUTDOWN
                            if reason is DisconnectReason.SHUTDOWN
                            else codes.SUCCESS
                        )
                        link.queue.put_nowait(None)
                        self._tasks.spawn(self._close_after_flush(link, code, reason.value), "bye")
                case PeerRestarted(peer, start_ms):
                    self._peer_restarted(peer, start_ms)
                case SyncCompleted(peer, accepted):
                    self._resolve_sync(peer, accepted)
                case SyncFailed(peer, reason, retry_after_ms):
                    error: MosaikError = (
                        TransportError(f"sync with {peer.short()} failed: {reason}")
                        if retry_after_ms is None
                        else SyncRefused(peer, retry_after_ms)
                    )
                    self._resolve_sync(peer, 0, error)

    def _peer_restarted(self, peer: PeerId, start_ms: int) -> None:
        """``peer`` runs a process started at ``start_ms``: close the discovery link and every
        other connection (streams, groups, pooled ones) that still leads to its dead one.

        The link is judged by the incarnation the peer showed on it; the other connections by
        when they opened, by our clock against the peer's (skew beyond the time between a
        connection and the restart would misjudge one, which then reconnects or times out).
        """
        link = self._links.get(peer)
        keep: Connection | None = None
        stale = False
        if link is not None and not link.closing:
            if link.started_before(start_ms):
                log.info("peer %s restarted: dropping its stale discovery link", peer.short())
                stale = True
                del self._links[peer]  # so its reader does not report a second disconnection
                self._retire(link, "the peer restarted")
            else:
                keep = link.conn
        closed = self.endpoint.forget_peer(
            peer, "the peer restarted", opened_before=start_ms / 1000, keep=keep
        )
        if closed:
            log.info("peer %s restarted: closed %d connection(s) to it", peer.short(), closed)
        if stale:
            self._apply(self.core.stale_link_closed(peer, _now_ms()))

    def _resolve_sync(self, peer: PeerId, accepted: int, error: MosaikError | None = None) -> None:
        for waiter in self._syncs.pop(peer, []):
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(accepted)
            else:
                waiter.set_exception(error)

    async def _timer(self) -> None:
        while True:
            deadline = self._deadline
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
                continue
            delay = (deadline - _now_ms()) / 1000
            if delay > 0:
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                    continue  # rescheduled
                except TimeoutError:
                    pass
            self._deadline = None
            self._apply(self.core.tick(_now_ms()))

    async def _dial(self, peer: PeerId, addrs: tuple[str, ...]) -> None:
        timeout = self.config.dial_timeout_ms / 1000
        for addr in addrs:
            try:
                async with asyncio.timeout(timeout):
                    conn = await self.endpoint.connect(SocketAddr.parse(addr), DISCOVERY_ALPN, peer)
                    stream = await conn.open_stream()
            except (MosaikError, TimeoutError) as exc:
                log.debug("dial %s at %s failed: %s", peer.short(), addr, exc)
                continue
            self._adopt(_Link(peer, conn, stream, outbound=True))
            return
        if not self._closed:
            self._apply(self.core.dial_failed(peer, _now_ms()))

    async def _accept(self, conn: Connection) -> None:
        stream = await conn.accept_stream()
        # The dialler speaks first, normally a sync request led by its own entry: reading that
        # frame before adopting the link tells a restarted peer from a duplicate link.
        first = await stream.recv()
        if first is None:
            return
        link = _Link(conn.peer_id, conn, stream, outbound=False)
        link.observe(first)
        self._adopt(link, first)
        await link.conn.wait_closed()

    def _adopt(self, link: _Link, first: bytes | None = None) -> None:
        """Make ``link`` the peer's link (``first``: a frame already read from it).

        Of two live links to one peer, the one reaching its later incarnation wins: the peer
        restarted, and the other link leads to a dead process that QUIC only notices after its
        idle timeout. Of two links to the same incarnation (both sides dialled at once), both
        sides keep the lower id's dial.
        """
        if self._closed:
            link.conn.close(codes.GRACEFUL_SHUTDOWN, "node leaving")
            return
        current = self._links.get(link.peer)
        if current is not None and (current.closing or current.conn.closed):
            current = None  # on its way out: the new link simply takes its place
        restarted = current is not None and link.newer_than(current)
        if current is not None:
            if current.newer_than(link):
                link.conn.close(codes.SUCCESS, "link from an older incarnation")
                return
            keep_outbound = self.endpoint.peer_id < link.peer
            if not restarted and current.outbound == keep_outbound:
                link.conn.close(codes.SUCCESS, "duplicate discovery link")
                if first is not None:
                    # As far as we can tell the process at the kept link sent it (its sync
                    # request, usually): answer there, or its sync waits a timeout to retry.
                    self._apply(self.core.receive(link.peer, first, _now_ms()))
                return
            if restarted:
                log.info("peer %s restarted: dropping its stale discovery link", link.peer.short())
            self._retire(current, "stale link" if restarted else "duplicate discovery link")
        self._links[link.peer] = link
        self._tasks.spawn(self._read(link, first), f"read/{link.peer.short()}")
        self._tasks.spawn(self._write(link), f"write/{link.peer.short()}")
        now = _now_ms()
        if restarted:
            # A new process is a new neighbour: pings and syncs sent to the old one are lost.
            self._apply(self.core.peer_disconnected(link.peer, now))
        if restarted or current is None:
            self._apply(self.core.peer_connected(link.peer, now, outbound=link.outbound))

    def _retire(self, link: _Link, reason: str) -> None:
        link.closing = True
        link.queue.put_nowait(None)  # ends its writer
        link.conn.close(codes.SUCCESS, reason)

    async def _read(self, link: _Link, first: bytes | None) -> None:
        try:
            if first is not None:
                self._receive(link, first)
            async for body in link.stream:
                self._receive(link, body)
        except TransportError as exc:
            log.debug("link to %s ended: %s", link.peer.short(), exc)
        finally:
            link.conn.close(codes.SUCCESS, "stream ended")
            if self._links.get(link.peer) is link:
                del self._links[link.peer]
                if not self._closed:
                    self._apply(self.core.peer_disconnected(link.peer, _now_ms()))

    def _receive(self, link: _Link, body: bytes) -> None:
        link.observe(body)
        self._apply(self.core.receive(link.peer, body, _now_ms()))

    async def _write(self, link: _Link) -> None:
        queue = link.queue
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                bodies = [body for body in batch if body is not None]
                try:
                    if bodies:
                        await link.stream.send_bodies(bodies)
                finally:
                    for _ in batch:
                        queue.task_done()
                if len(bodies) < len(batch):
                    return  # flushed up to the Disconnect marker
        except TransportError:
            while not queue.empty():
                queue.get_nowait()
                queue.task_done()

    async def _flushed(self, link: _Link) -> None:
        await link.queue.join()
        await link.conn.drain()

    async def _close_after_flush(self, link: _Link, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(_SHUTDOWN_FLUSH_S):
                await self._flushed(link)
        except TimeoutError:
            pass
        link.conn.close(code, reason)


class _DiscoveryCollector(Collector):
    """Exports the core's statistics at scrape time (no bookkeeping on the hot path)."""

    def __init__(self, discovery: Discovery, network: str) -> None:
        self._discovery = discovery
        self._network = network

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self._discovery.core.statistics()
        gauges = {
            "mosaik_discovery_catalog_size": ("Signed peer entries in the catalog", "catalog_size"),
            "mosaik_discovery_neighbours": ("Connected gossip neighbours", "neighbours"),
        }
        for name, (doc, attr) in gauges.items():
            gauge = GaugeMetricFamily(name, doc, labels=["network"])
            gauge.add_metric([self._network], getattr(stats, attr))
            yield gauge
        counters = {
            "mosaik_discovery_peers_discovered": "peers_discovered",
            "mosaik_discovery_peers_updated": "peers_updated",
            "mosaik_discovery_peers_departed": "peers_departed",
            "mosaik_discovery_syncs_completed": "syncs_completed",
            "mosaik_discovery_syncs_failed": "syncs_failed",
            "mosaik_discovery_syncs_refused": "syncs_refused",
            "mosaik_discovery_gossip_messages_sent": "messages_sent",
            "mosaik_discovery_gossip_messages_received": "messages_received",
            "mosaik_discovery_messages_dropped": "messages_dropped",
            "mosaik_discovery_entries_rejected": "entries_rejected",
        }
        for name, attr in counters.items():
            counter = CounterMetricFamily(name, attr.replace("_", " "), labels=["network"])
            counter.add_metric([self._network], getattr(stats, attr))
            yield counter
