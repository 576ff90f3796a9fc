"""One UDP socket per node carrying every QUIC connection, demultiplexed by connection id.

aioquic's own asyncio client opens a socket per connection; a peer-to-peer node must accept and
dial on the same port, so this endpoint routes datagrams itself: known destination connection
ids go to their connection, an unknown INITIAL packet starts an incoming connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aioquic.buffer import Buffer  # type: ignore[attr-defined]
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicPacketType, pull_quic_header

from node._tasks import TaskScope
from node.errors import CodecError, ConfigError
from node.primitives.codec import DEFAULT_MAX_FRAME
from node.primitives.digest import NetworkId
from node.primitives.keys import PeerId, SecretKey
from node.transport import _aioquic, codes
from node.transport.addr import PeerAddr, SocketAddr
from node.transport.connection import Connection, ConnectionHost
from node.transport.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosed,
    DifferentNetwork,
)
from node.transport.faults import FaultShim

log = logging.getLogger("mosaik.transport")

Handler = Callable[[Connection], Awaitable[None]]

_CID_LENGTH = 8
_MIN_INITIAL_SIZE = 1200


@dataclass(frozen=True)
class TransportConfig:
    """Limits of the transport; defaults suit a LAN or a cloud region."""

    max_frame: int = DEFAULT_MAX_FRAME
    # Receive window per stream: what a reader that stops reading may hold at most.
    stream_window: int = 1024 * 1024
    # Unacknowledged bytes per stream above which ``send`` waits.
    send_high_water: int = 1024 * 1024
    idle_timeout: float = 30.0
    auth_timeout: float = 5.0
    keepalive_interval: float = 10.0
    pool_idle_timeout: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_frame", "stream_window", "send_high_water"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"transport {name} must be positive")
        if self.stream_window < 4096:
            raise ConfigError("transport stream_window must be at least 4096 bytes")


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._endpoint._datagram_received(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class Endpoint:
    """The node's QUIC endpoint: dials, accepts, authenticates and routes connections."""

    def __init__(
        self,
        secret_key: SecretKey,
        network_id: NetworkId,
        config: TransportConfig | None = None,
        *,
        faults: FaultShim | None = None,
    ) -> None:
        self.secret_key = secret_key
        self.peer_id: PeerId = secret_key.peer_id
        self.network_id = network_id
        self.config = config or TransportConfig()
        self.max_frame = self.config.max_frame
        self.send_high_water = self.config.send_high_water
        self.faults = faults
        self._certificate = _aioquic.self_signed_certificate(secret_key)
        self._handlers: dict[str, Handler] = {}
        self._routes: dict[bytes, Connection] = {}
        self._connections: set[Connection] = set()
        self._pool: dict[tuple[PeerId, str], Connection] = {}
        self._dialing: dict[tuple[PeerId, str], asyncio.Future[Connection]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._local: SocketAddr | None = None
        self._tasks = TaskScope("transport")
        self._closed = False
        self.stats = {"connections_opened": 0, "connections_accepted": 0, "auth_failures": 0}
        self._host = ConnectionHost(
            secret_key=secret_key,
            network_id=network_id,
            max_frame=self.max_frame,
            send_high_water=self.send_high_water,
            transmit=self._sendto,
            route=self._route,
            unroute=self._unroute,
            authenticated=self._authenticated,
            ended=self._forget,
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, bind: SocketAddr | str = "127.0.0.1:0") -> None:
        addr = SocketAddr.parse(bind) if isinstance(bind, str) else bind
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _DatagramProtocol(self), local_addr=(addr.host, addr.port)
            )
        except OSError as exc:
            raise ConfigError(f"cannot bind {addr}: {exc.strerror or exc}") from None
        self._transport = transport
        sock = transport.get_extra_info("sockname")
        self._local = SocketAddr(sock[0], sock[1])
        self._tasks.spawn(self._maintain(), "maintain")

    @property
    def local_addr(self) -> SocketAddr:
        if self._local is None:
            raise RuntimeError("endpoint is not started")
        return self._local

    def register(self, alpn: str, handler: Handler) -> None:
        """Route authenticated incoming connections of ``alpn`` to ``handler``."""
        if alpn in self._handlers:
            raise ConfigError(f"a handler for ALPN {alpn!r} is already registered")
        self._handlers[alpn] = handler

    async def close(self) -> None:
        """Close every connection with GracefulShutdown, stop tasks and release the socket."""
        if self._closed:
            return
        self._closed = True
        for conn in list(self._connections):
            conn.close(codes.GRACEFUL_SHUTDOWN, "node shutting down")
            conn._drop_timer()
        await self._tasks.aclose()
        if self._transport is not None:
            self._transport.close()

    # -- dialing --------------------------------------------------------------------------

    async def connect(
        self, addr: SocketAddr | str, alpn: str, expected: PeerId | None = None
    ) -> Connection:
        """A new authenticated connection to ``addr`` speaking ``alpn``.

        Raises ``PeerMismatch`` when the address proves another peer than ``expected``,
        ``DifferentNetwork`` when it belongs to another network, ``ConnectError`` otherwise.
        """
        if self._closed or self._transport is None:
            raise ConnectError("endpoint is closed")
        remote = SocketAddr.parse(addr) if isinstance(addr, str) else addr
        configuration = QuicConfiguration(
            is_client=True,
            alpn_protocols=[alpn],
            verify_mode=ssl.CERT_NONE,  # the peer's key is checked against its id, not a CA
            server_name="mosaik",
            max_stream_data=self.config.stream_window,
            idle_timeout=self.config.idle_timeout,
        )
        quic = _aioquic.CreditedQuicConnection(
            stream_window=self.config.stream_window, configuration=configuration
        )
        conn = Connection(self._host, quic, remote, alpn, dialer=True, expected=expected)
        self._connections.add(conn)
        self._route(quic.host_cid, conn)
        self.stats["connections_opened"] += 1
        conn._start_dial()
        try:
            await conn._wait_ready()
        except (AuthenticationError, DifferentNetwork):
            self.stats["auth_failures"] += 1
            raise
        except ConnectionClosed as exc:
            if exc.code == codes.INVALID_ALPN:
                raise ConnectError(f"{remote} does not speak {alpn}") from None
            raise ConnectError(f"could not connect to {remote}: {exc}") from None
        except BaseException:
            conn.close(codes.CANCELLED, "dial abandoned")
            raise
        return conn

    async def connection(self, peer: PeerAddr, alpn: str) -> Connection:
        """A pooled connection to ``peer`` for ``alpn``: reused while open, dialled once."""
        key = (peer.peer_id, alpn)
        conn = self._pool.get(key)
        if conn is not None and not conn.closed:
            return conn
        pending = self._dialing.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._dialing[key] = future
        try:
            conn = await self.connect(peer.addr, alpn, expected=peer.peer_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._dialing[key]
        self._pool[key] = conn
        future.set_result(conn)
        return conn

    def forget_peer(
        self,
        peer: PeerId,
        reason: str,
        *,
        opened_before: float | None = None,
        keep: Connection | None = None,
    ) -> int:
        """Close the connections to ``peer`` because its process is gone; how many closed.

        A peer restarted with the same key leaves connections to its dead process that QUIC
        only notices after its idle timeout. ``opened_before`` (unix seconds, the new process's
        start) spares those opened since, ``keep`` one known to reach the new process. Pooled
        connections leave the pool, so the next ``connection()`` dials afresh; the owners of
        the others see them end as on any close, with ``SUCCESS`` and ``reason``.
        """
        stale = [
            conn
            for conn in self._connections
            if conn._peer_id == peer
            and conn is not keep
            and not conn.closed
            and (opened_before is None or conn.opened_at < opened_before)
        ]
        for conn in stale:
            conn.close(codes.SUCCESS, reason)
        return len(stale)

    # -- routing --------------------------------------------------------------------------

    def _datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=_CID_LENGTH)
        except ValueError:
            return
        conn = self._routes.get(header.destination_cid)
        if conn is None:
            if (
                header.packet_type != QuicPacketType.INITIAL
                or len(data) < _MIN_INITIAL_SIZE
                or self._closed
            ):
                return
            conn = self._accept(header.destination_cid, SocketAddr(addr[0], addr[1]))
        conn._datagram_received(data, addr)

    def _accept(self, original_cid: bytes, remote: SocketAddr) -> Connection:
        configuration = QuicConfiguration(
            is_client=False,
            alpn_protocols=list(self._handlers),
            certificate=self._certificate,
            private_key=self.secret_key.private_key,
            max_stream_data=self.config.stream_window,
            idle_timeout=self.config.idle_timeout,
        )
        quic = _aioquic.CreditedQuicConnection(
            stream_window=self.config.stream_window,
            configuration=configuration,
            original_destination_connection_id=original_cid,
        )
        conn = Connection(self._host, quic, remote, alpn="", dialer=False)
        self._connections.add(conn)
        self._route(original_cid, conn)
        self._route(quic.host_cid, conn)
        loop = asyncio.get_running_loop()
        loop.call_later(self.config.auth_timeout, conn._auth_deadline, self.config.auth_timeout)
        return conn

    def _route(self, cid: bytes, conn: Connection) -> None:
        self._routes[cid] = conn

    def _unroute(self, cid: bytes) -> None:
        self._routes.pop(cid, None)

    def _forget(self, conn: Connection) -> None:
        self._connections.discard(conn)
        for cid in [cid for cid, c in self._routes.items() if c is conn]:
            del self._routes[cid]
        for key in [key for key, c in self._pool.items() if c is conn]:
            del self._pool[key]

    def _sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self.faults is None:
            transport.sendto(data, addr)
        else:
            local = self.local_addr
            self.faults.send(transport.sendto, data, (local.host, local.port), addr)

    # -- accepted connections -------------------------------------------------------------

    def _authenticated(self, conn: Connection) -> None:
        handler = self._handlers.get(conn.alpn)
        if handler is None:  # the TLS layer only negotiates registered ALPNs
            conn.close(codes.INVALID_ALPN, f"no protocol for {conn.alpn}")
            return
        self.stats["connections_accepted"] += 1
        self._tasks.spawn(self._serve(conn, handler), f"{conn.alpn}/{conn.peer_id.short()}")

    async def _serve(self, conn: Connection, handler: Handler) -> None:
        try:
            await handler(conn)
        except ConnectionClosed:
            return
        except CodecError as exc:
            log.info("%r: protocol violation: %s", conn, exc)
            conn.close(codes.PROTOCOL_VIOLATION, str(exc))
        except Exception:
            log.exception("%r: handler failed", conn)
            conn.close(codes.UNEXPECTED_CLOSE, "handler failed")
        else:
            conn.close(codes.SUCCESS)

    async def _maintain(self) -> None:
        """Keep pooled connections alive while used; close those idle past the pool timeout."""
        loop = asyncio.get_running_loop()
        interval = self.config.keepalive_interval
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for conn in list(self._pool.values()):
                if now - conn.last_used > self.config.pool_idle_timeout:
                    conn.close(codes.SUCCESS, "idle")
                else:
                    conn.ping()

    def statistics(self) -> dict[str, Any]:
        return {
            **self.stats,
            "connections": len(self._connections),
            "pooled": len(self._pool),
            "authenticated": sum(1 for c in self._connections if c.authenticated),
        }

    def connections(self) -> list[Connection]:
        """Open authenticated connections, newest last."""
        return [c for c in self._connections if c.authenticated and not c.closed]
