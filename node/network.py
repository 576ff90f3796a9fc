"""The ``Network`` facade: one node's endpoint, identity and subsystems, wired together."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec

from node._version import __version__
from node.admin import AdminServer
from node.collections import Collections
from node.discovery.config import DiscoveryConfig
from node.discovery.mdns import LanDiscovery
from node.discovery.service import Discovery
from node.errors import ConfigError
from node.groups import Groups
from node.metrics import Metrics
from node.primitives.codec import Decoder
from node.primitives.digest import Digest, NetworkId, Tag
from node.primitives.keys import PeerId, SecretKey
from node.streams import Streams
from node.transport import Connection, Endpoint, FaultShim, PeerAddr, SocketAddr, TransportConfig
from node.transport.errors import TransportError

log = logging.getLogger("mosaik.network")

PING_ALPN = "/mosaik/ping/1"


class _Ping(msgspec.Struct, frozen=True):
    sent_ns: int


_ping_decoder = Decoder(_Ping)


def _as_peer_addr(peer: str | PeerAddr) -> PeerAddr:
    return peer if isinstance(peer, PeerAddr) else PeerAddr.parse(peer)


class Network:
    """A running node. Create it with ``await Network.create(...)`` or ``async with``."""

    groups: Groups

    def __init__(
        self,
        network_id: NetworkId,
        endpoint: Endpoint,
        *,
        name: str,
        bootstrap: tuple[PeerAddr, ...],
        tags: frozenset[Tag],
        data_dir: Path | None,
        metrics_addr: SocketAddr | None,
        discovery: DiscoveryConfig | None = None,
        advertise: Iterable[str] = (),
        mdns: bool = False,
    ) -> None:
        self.network_id = network_id
        self.name = name
        self.endpoint = endpoint
        self.bootstrap = bootstrap
        self.tags = tags
        self.data_dir = data_dir
        self.metrics = Metrics(network_id)
        self._metrics_addr = metrics_addr
        self._admin: AdminServer | None = None
        self._started_at = time.time()
        self._closed = False
        self.discovery = Discovery(endpoint, self.metrics, config=discovery, advertise=advertise)
        self.lan: LanDiscovery | None = None
        self.streams = Streams(self)
        self._status_sections: dict[str, Callable[[], Any]] = {}
        self._mdns = mdns
        self._connections_gauge = self.metrics.gauge(
            "mosaik_transport_connections", "Open authenticated QUIC connections"
        )
        self._connections_gauge.labels(self.metrics.network).set_function(
            lambda: len(self.endpoint.connections())
        )

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str | Digest,
        *,
        secret_key: SecretKey | None = None,
        bind: str | SocketAddr = "127.0.0.1:0",
        bootstrap: Iterable[str | PeerAddr] = (),
        tags: Iterable[str | Tag] = (),
        data_dir: str | Path | None = None,
        metrics_addr: str | SocketAddr | None = None,
        transport: TransportConfig | None = None,
        discovery: DiscoveryConfig | None = None,
        advertise: Iterable[str] = (),
        mdns: bool = False,
        faults: FaultShim | None = None,
    ) -> _NetworkStart:
        """Start a node on network ``name``: awaitable, or an async context manager."""
        return _NetworkStart(
            cls._start(
                name,
                secret_key=secret_key,
                bind=bind,
                bootstrap=bootstrap,
                tags=tags,
                data_dir=data_dir,
                metrics_addr=metrics_addr,
                transport=transport,
                discovery=discovery,
                advertise=advertise,
                mdns=mdns,
                faults=faults,
            )
        )

    @classmethod
    async def _start(
        cls,
        name: str | Digest,
        *,
        secret_key: SecretKey | None,
        bind: str | SocketAddr,
        bootstrap: Iterable[str | PeerAddr],
        tags: Iterable[str | Tag],
        data_dir: str | Path | None,
        metrics_addr: str | SocketAddr | None,
        transport: TransportConfig | None,
        discovery: DiscoveryConfig | None,
        advertise: Iterable[str],
        mdns: bool,
        faults: FaultShim | None,
    ) -> Network:
        network_id = Digest.from_name(name)
        seeds = tuple(_as_peer_addr(p) for p in bootstrap)
        tag_ids = frozenset(Digest.from_name(t) for t in tags)
        directory = Path(data_dir) if data_dir is not None else None
        if directory is not None:
            try:
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise ConfigError(f"data directory {directory}: {exc.strerror}") from None
        admin_addr = (
            SocketAddr.parse(metrics_addr) if isinstance(metrics_addr, str) else metrics_addr
        )
        endpoint = Endpoint(
            secret_key or SecretKey.generate(), network_id, transport, faults=faults
        )
        await endpoint.start(bind)
        net = cls(
            network_id,
            endpoint,
            name=name.hex() if isinstance(name, Digest) else name,
            bootstrap=seeds,
            tags=tag_ids,
            data_dir=directory,
            metrics_addr=admin_addr,
            discovery=discovery,
            advertise=advertise,
            mdns=mdns,
        )
        try:
            await net._open()
        except BaseException:
            await net.close()
            raise
        return net

    async def _open(self) -> None:
        self.endpoint.register(PING_ALPN, self._serve_ping)
        if self._metrics_addr is not None:
            self._admin = AdminServer(self.status, self.metrics.exposition, self._problems)
            await self._admin.start(self._metrics_addr)
        if self.tags:
            self.discovery.add_tags(*self.tags)
        await self.discovery.start(seed for seed in self.bootstrap if seed.peer_id != self.peer_id)
        if self._mdns:
            self.lan = LanDiscovery(self.discovery)
            await self.lan.start()
        await self.streams.start()
        self.discovery.on_local_change(self.streams.local_entry_changed)
        self.groups = Groups(self)
        self.register_status("groups", self.groups.status)
        self.collections = Collections(self)
        self.register_status("collections", self.collections.statistics)
        log.info("node %s on network %s listening on %s", self.peer_id, self.name, self.local_addr)

    # -- identity -------------------------------------------------------------------------

    @property
    def peer_id(self) -> PeerId:
        return self.endpoint.peer_id

    @property
    def secret_key(self) -> SecretKey:
        return self.endpoint.secret_key

    @property
    def local_addr(self) -> SocketAddr:
        return self.endpoint.local_addr

    @property
    def admin_addr(self) -> SocketAddr | None:
        return self._admin.address if self._admin else None

    @property
    def address(self) -> PeerAddr:
        """This node as a dial target: ``<peer-id>@host:port``."""
        return PeerAddr(self.peer_id, self.local_addr)

    # -- connections ----------------------------------------------------------------------

    async def dial(self, peer: str | PeerAddr, alpn: str) -> Connection:
        """A pooled, authenticated connection to ``peer`` (``<peer-id>@host:port``)."""
        return await self.endpoint.connection(_as_peer_addr(peer), alpn)

    async def ping(self, peer: str | PeerAddr) -> float:
        """Round-trip time to ``peer`` in seconds over a pooled connection."""
        conn = await self.dial(peer, PING_ALPN)
        stream = await conn.open_stream()
        start = time.perf_counter_ns()
        await stream.send(_Ping(start))
        reply = await stream.recv_as(_ping_decoder)
        stream.finish()
        if reply is None or reply.sent_ns != start:
            raise TransportError(f"peer {conn.peer_id.short()} answered the ping wrongly")
        return (time.perf_counter_ns() - start) / 1e9

    async def _serve_ping(self, conn: Connection) -> None:
        while True:
            stream = await conn.accept_stream()
            ping = await stream.recv_as(_ping_decoder)
            if ping is not None:
                await stream.send(ping)
                stream.finish()

    # -- state ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``mosaik node inspect`` shows: identity, uptime and connections."""
        sections = {name: section() for name, section in self._status_sections.items()}
        return sections | {
            "version": __version__,
            "network": self.name,
            "network_id": self.network_id.hex(),
            "peer_id": self.peer_id.hex(),
            "address": str(self.local_addr),
            "tags": sorted(t.hex() for t in self.tags),
            "uptime_s": round(time.time() - self._started_at, 3),
            "connections": [
                {
                    "peer_id": c.peer_id.hex(),
                    "alpn": c.alpn,
                    "remote": str(c.remote_addr),
                    "dialer": c.is_dialer,
                }
                for c in self.endpoint.connections()
            ],
            "transport": self.endpoint.statistics(),
            "streams": self.streams.statistics(),
            "neighbours": [p.hex() for p in self.discovery.neighbours],
            "catalog": [
                {
                    "peer_id": info.peer_id.hex(),
                    "addrs": list(info.entry.addrs),
                    "tags": sorted(t.hex() for t in info.tags),
                    "rtt_ms": info.rtt_ms,
                }
                for info in self.discovery.catalog
            ],
        }

    def _problems(self) -> list[str]:
        """What ``/healthz`` reports as unhealthy: stopped groups."""
        return self.groups.problems() if "groups" in vars(self) else []

    def register_status(self, name: str, section: Callable[[], Any]) -> None:
        """Add a section to ``status()`` (and so to ``/status`` and ``node inspect``)."""
        self._status_sections[name] = section

    def connected_peers(self) -> set[PeerId]:
        return {c.peer_id for c in self.endpoint.connections()}

    # -- lifetime -------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if "collections" in vars(self):
            await self.collections.close()
        if "groups" in vars(self):
            await self.groups.close()
        if self.lan is not None:
            await self.lan.close()
        await self.discovery.close()
        if self._admin is not None:
            await self._admin.close()
        await self.endpoint.close()

    async def __aenter__(self) -> Network:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Network({self.name!r}, peer={self.peer_id.short()}, addr={self.local_addr})"


class _NetworkStart:
    """What ``Network.create`` returns: await it, or use it as ``async with``."""

    def __init__(self, starting: Awaitable[Network]) -> None:
        self._starting = starting
        self._network: Network | None = None

    def __await__(self) -> Generator[Any, None, Network]:
        return self._starting.__await__()

    async def __aenter__(self) -> Network:
        self._network = await self._starting
        return self._network

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._network is not None:
            await self._network.close()
