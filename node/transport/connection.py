"""An authenticated QUIC connection and its length-framed bidirectional streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aioquic.quic import events

from node.errors import CodecError, DecodeError
from node.primitives.codec import Decoder, FrameBuffer, encode, frame_bytes
from node.primitives.digest import NetworkId
from node.primitives.keys import PeerId, SecretKey
from node.transport import _aioquic, auth, codes
from node.transport.addr import SocketAddr
from node.transport.errors import (
    AuthenticationError,
    ConnectionClosed,
    DifferentNetwork,
    PeerMismatch,
)

T = TypeVar("T")
log = logging.getLogger("mosaik.transport")

# QUIC CRYPTO_ERROR (0x100) carrying the TLS alert no_application_protocol (120).
_NO_APPLICATION_PROTOCOL = 0x100 + 120

_hello_decoder = Decoder(auth.AuthHello)
_accepted_decoder = Decoder(auth.AuthAccepted)


@dataclass(frozen=True, slots=True)
class ConnectionHost:
    """What a connection needs from the endpoint that carries it: the node's identity, its
    limits, and the endpoint's hooks. Built once by the endpoint, shared by its connections."""

    secret_key: SecretKey
    network_id: NetworkId
    max_frame: int
    send_high_water: int
    transmit: Callable[[bytes, tuple[str, int]], None]
    """Send one datagram to an address on the endpoint's socket."""
    route: Callable[[bytes, Connection], None]
    """Deliver datagrams addressed to a connection id to the connection."""
    unroute: Callable[[bytes], None]
    """Stop delivering datagrams addressed to a (retired) connection id."""
    authenticated: Callable[[Connection], None]
    """An accepted connection's peer proved its key: hand it to its ALPN's handler."""
    ended: Callable[[Connection], None]
    """The connection ended: forget its routes, and drop it from the pool."""


class FramedStream:
    """A bidirectional QUIC stream carrying length-prefixed msgpack frames.

    ``send`` waits while more than ``send_high_water`` bytes are unacknowledged, so a slow
    reader slows the writer instead of growing its buffer. Received frames are held up to one
    receive window: credit is granted back only as ``recv`` consumes them.
    """

    def __init__(self, connection: Connection, stream_id: int) -> None:
        self._conn = connection
        self.stream_id = stream_id
        self._frames: deque[bytes] = deque()
        self._buffer = FrameBuffer(connection.max_frame)
        self._arrived = asyncio.Event()
        self._ended = False
        self._finished = False
        self.frames_sent = 0
        self.frames_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def connection(self) -> Connection:
        return self._conn

    @property
    def peer_id(self) -> PeerId:
        return self._conn.peer_id

    def _on_data(self, data: bytes, end_stream: bool) -> None:
        if data:
            before = self._buffer.pending
            try:
                self._frames.extend(self._buffer.feed(data))
            except CodecError as exc:
                self._conn.close(codes.PROTOCOL_VIOLATION, str(exc))
                return
            # A frame still being reassembled is credited at once (bounded by max_frame), so a
            # frame larger than the receive window can complete.
            self._conn._consumed(self.stream_id, self._buffer.pending - before)
        if end_stream:
            self._ended = True
        self._arrived.set()

    def _wake(self) -> None:
        self._arrived.set()

    async def send(self, message: Any) -> None:
        """Encode ``message`` and send it as one frame."""
        await self.send_bodies((encode(message),))

    async def send_body(self, body: bytes) -> None:
        """Send an already-encoded body (one encoding shared by many streams)."""
        await self.send_bodies((body,))

    async def send_bodies(self, bodies: Iterable[bytes]) -> None:
        """Send several frames in one write (batching under load)."""
        conn = self._conn
        await conn._wait_writable(self.stream_id)
        if self._finished:
            raise ConnectionClosed(codes.CANCELLED, "stream already finished")
        frames = [frame_bytes(body, conn.max_frame) for body in bodies]
        data = b"".join(frames)
        conn._write(self.stream_id, data, end_stream=False)
        self.frames_sent += len(frames)
        self.bytes_sent += len(data)

    def finish(self) -> None:
        """End our side of the stream; the peer's ``recv`` then returns None."""
        if not self._finished and not self._conn.closed:
            self._finished = True
            self._conn._write(self.stream_id, b"", end_stream=True)

    async def recv(self) -> bytes | None:
        """The next frame body, or None once the peer finished the stream."""
        while True:
            body = self.recv_nowait()
            if body is not None:
                return body
            if self._conn.close_info is not None:
                raise self._conn.close_info
            if self._ended:
                return None
            self._arrived.clear()
            await self._arrived.wait()

    async def recv_as(self, decoder: Decoder[T]) -> T | None:
        """The next frame decoded with ``decoder``; a malformed body closes the connection."""
        body = await self.recv()
        if body is None:
            return None
        try:
            return decoder.decode(body)
        except DecodeError as exc:
            self._conn.close(codes.PROTOCOL_VIOLATION, str(exc))
            raise

    def recv_nowait(self) -> bytes | None:
        """A frame that already arrived, or None."""
        if not self._frames:
            return None
        body = self._frames.popleft()
        self.frames_received += 1
        self.bytes_received += len(body) + 4
        self._conn._consumed(self.stream_id, len(body) + 4)
        return body

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while (body := await self.recv()) is not None:
            yield body


class Connection:
    """A QUIC connection whose peer has proven its node key.

    Obtained from ``Endpoint.connect`` (dialer) or handed to an ALPN handler (acceptor). Only
    authenticated connections ever reach application code. The endpoint drives it through
    its ``_``-prefixed methods; it answers through the ``ConnectionHost`` it was built with.
    """

    def __init__(
        self,
        host: ConnectionHost,
        quic: _aioquic.CreditedQuicConnection,
        remote: SocketAddr,
        alpn: str,
        *,
        dialer: bool,
        expected: PeerId | None = None,
    ) -> None:
        self._host = host
        self._quic = quic
        self.remote_addr = remote
        self.alpn = alpn
        self.is_dialer = dialer
        self._expected = expected
        self._peer_id: PeerId | None = None
        self._streams: dict[int, FramedStream] = {}
        self._incoming: asyncio.Queue[FramedStream | None] = asyncio.Queue()
        self._auth_buffer = FrameBuffer(4096)
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._progress = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.close_info: ConnectionClosed | None = None
        self._closing_locally = False
        self._closed_event = asyncio.Event()
        self._flush_scheduled = False
        self.max_frame = host.max_frame
        self.send_high_water = host.send_high_water
        self.last_used = asyncio.get_running_loop().time()
        self.opened_at = time.time()
        """When the dial started or the first packet arrived (unix seconds): compared with a
        peer's process start time to tell whether this connection reaches that process."""

    # -- public ---------------------------------------------------------------------------

    @property
    def peer_id(self) -> PeerId:
        if self._peer_id is None:
            raise AuthenticationError("connection is not authenticated yet")
        return self._peer_id

    @property
    def closed(self) -> bool:
        return self.close_info is not None

    @property
    def authenticated(self) -> bool:
        return self._ready.done() and self._ready.exception() is None

    async def open_stream(self) -> FramedStream:
        """A new bidirectional stream; the opener sends first so the peer sees it."""
        if self.close_info is not None:
            raise self.close_info
        stream_id = self._quic.get_next_available_stream_id()
        stream = FramedStream(self, stream_id)
        self._streams[stream_id] = stream
        self.last_used = asyncio.get_running_loop().time()
        return stream

    async def accept_stream(self) -> FramedStream:
        """The next stream the peer opened."""
        stream = await self._incoming.get()
        if stream is None:
            self._incoming.put_nowait(None)
            assert self.close_info is not None
            raise self.close_info
        return stream

    def close(self, code: int = codes.SUCCESS, reason: str = "") -> None:
        """Close with an application code; idempotent."""
        if self.close_info is not None or self._closing_locally:
            return
        self._closing_locally = True
        self._transmit()  # what the streams already hold goes out ahead of the close
        self._quic.close(error_code=code, reason_phrase=reason)
        self._transmit()
        self._terminate(ConnectionClosed(code, reason, by_peer=False))

    async def drain(self) -> None:
        """Wait until the peer acknowledged everything written (or the connection ended)."""
        while self.close_info is None:
            if not any(_aioquic.unacked_bytes(self._quic, sid) for sid in self._streams):
                return
            self._progress.clear()
            await self._progress.wait()

    async def wait_closed(self) -> ConnectionClosed:
        await self._closed_event.wait()
        assert self.close_info is not None
        return self.close_info

    def unacked_bytes(self, stream: FramedStream) -> int:
        return _aioquic.unacked_bytes(self._quic, stream.stream_id)

    def ping(self) -> None:
        if self.close_info is None:
            self._quic.send_ping(0)
            self._transmit()

    def __repr__(self) -> str:
        who = self._peer_id.short() if self._peer_id else "?"
        return f"Connection({self.alpn} {who}@{self.remote_addr})"

    # -- driven by the endpoint -----------------------------------------------------------

    async def _wait_ready(self) -> None:
        await asyncio.shield(self._ready)

    def _start_dial(self) -> None:
        self._quic.connect(tuple(self.remote_addr), now=self._now())
        self._transmit()

    def _datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._quic.receive_datagram(data, addr, now=self._now())
        self._process()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._quic.handle_timer(now=self._now())
        self._process()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _process(self) -> None:
        while (event := self._quic.next_event()) is not None:
            self._handle_event(event)
        pending = _aioquic.pending_close(self._quic)
        if pending is not None and self.close_info is None:
            self._on_terminated(pending)
        self._transmit()
        self._progress.set()

    def _handle_event(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            if event.stream_id == auth.AUTH_STREAM_ID and not self._ready.done():
                self._auth_data(event.data)
            elif self._peer_id is not None:
                # A dialer knows the peer from TLS already; the acceptor only after the proof.
                self._stream_data(event.stream_id, event.data, event.end_stream)
            else:
                self.close(codes.AUTHENTICATION_FAILED, "data before authentication")
        elif isinstance(event, events.HandshakeCompleted):
            if self.is_dialer:
                self._send_hello()
            else:
                self.alpn = event.alpn_protocol or ""
        elif isinstance(event, events.ConnectionIdIssued):
            self._host.route(event.connection_id, self)
        elif isinstance(event, events.ConnectionIdRetired):
            self._host.unroute(event.connection_id)
        elif isinstance(event, events.StreamReset):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._on_data(b"", True)
        elif isinstance(event, events.ConnectionTerminated):
            self._on_terminated(event)

    def _on_terminated(self, event: events.ConnectionTerminated) -> None:
        by_peer = not self._closing_locally
        code, reason = event.error_code, event.reason_phrase
        if by_peer and (event.frame_type is not None or code == 0):
            # A transport-level close (TLS alert, protocol error) or aioquic's idle timeout.
            reason = reason or f"transport error 0x{code:x}"
            code = (
                codes.INVALID_ALPN if code == _NO_APPLICATION_PROTOCOL else codes.UNEXPECTED_CLOSE
            )
        exc_type = DifferentNetwork if code == codes.DIFFERENT_NETWORK else ConnectionClosed
        self._terminate(exc_type(code, reason, by_peer=by_peer))

    def _terminate(self, info: ConnectionClosed) -> None:
        if self.close_info is not None:
            return
        self.close_info = info
        if not self._ready.done():
            if info.code == codes.AUTHENTICATION_FAILED:
                self._ready.set_exception(AuthenticationError(str(info)))
            else:
                self._ready.set_exception(info)
            self._ready.exception()  # mark retrieved: a dial may have been abandoned
        for stream in self._streams.values():
            stream._wake()
        self._incoming.put_nowait(None)
        self._progress.set()
        self._closed_event.set()
        self._host.ended(self)

    # -- authentication -------------------------------------------------------------------

    def _send_hello(self) -> None:
        server = _aioquic.peer_certificate_id(self._quic)
        if server is None:
            self._fail_auth("peer presented no ed25519 node certificate")
            return
        if self._expected is not None and server != self._expected:
            self._fail_auth(
                f"expected peer {self._expected.short()}, reached {server.short()}",
                PeerMismatch(f"expected peer {self._expected}, reached {server}"),
            )
            return
        self._peer_id = server
        hello = auth.make_hello(self._host.secret_key, self._host.network_id, self.alpn, server)
        self._quic.send_stream_data(auth.AUTH_STREAM_ID, frame_bytes(encode(hello)))

    def _auth_deadline(self, seconds: float) -> None:
        if not self._ready.done() and self.close_info is None:
            self._fail_auth(f"no key proof within {seconds:g} s")

    def _fail_auth(self, reason: str, exc: Exception | None = None) -> None:
        log.info("closing %s: authentication failed: %s", self.remote_addr, reason)
        if not self._ready.done():
            self._ready.set_exception(exc or AuthenticationError(reason))
            self._ready.exception()
        self.close(codes.AUTHENTICATION_FAILED, reason)

    def _auth_data(self, data: bytes) -> None:
        try:
            bodies = list(self._auth_buffer.feed(data))
        except CodecError as exc:
            self._fail_auth(f"malformed authentication frame: {exc}")
            return
        if not bodies:
            return
        try:
            if self.is_dialer:
                accepted = _accepted_decoder.decode(bodies[0])
                if accepted.network_id != self._host.network_id:
                    self.close(codes.DIFFERENT_NETWORK, "peer is on another network")
                    return
                self._ready.set_result(None)
            else:
                self._accept_hello(_hello_decoder.decode(bodies[0]))
        except DecodeError as exc:
            self._fail_auth(f"malformed authentication message: {exc}")

    def _accept_hello(self, hello: auth.AuthHello) -> None:
        host = self._host
        network_id = host.network_id
        if hello.network_id != network_id:
            self.close(codes.DIFFERENT_NETWORK, f"this node is on network {network_id.short()}")
            return
        if not auth.hello_is_valid(hello, network_id, self.alpn, host.secret_key.peer_id):
            self._fail_auth("invalid key proof")
            return
        self._peer_id = hello.peer_id
        reply = auth.AuthAccepted(network_id)
        self._quic.send_stream_data(auth.AUTH_STREAM_ID, frame_bytes(encode(reply)))
        self._ready.set_result(None)
        self._host.authenticated(self)

    # -- streams --------------------------------------------------------------------------

    def _stream_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = FramedStream(self, stream_id)
            self._streams[stream_id] = stream
            self._incoming.put_nowait(stream)
        stream._on_data(data, end_stream)
        self.last_used = self._now()

    def _write(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if self.close_info is not None:
            raise self.close_info
        self._quic.send_stream_data(stream_id, data, end_stream)
        self.last_used = self._now()
        if not self._flush_scheduled:
            # Writes within one loop iteration share packets: flush once, after them.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.close_info is None:
            self._transmit()

    async def _wait_writable(self, stream_id: int) -> None:
        while True:
            if self.close_info is not None:
                raise self.close_info
            if _aioquic.unacked_bytes(self._quic, stream_id) <= self.send_high_water:
                return
            self._progress.clear()
            await self._progress.wait()

    def _consumed(self, stream_id: int, size: int) -> None:
        quic = self._quic
        quic.consumed[stream_id] = quic.consumed.get(stream_id, 0) + size
        if quic.credit_due(stream_id):
            self._transmit()

    def _transmit(self) -> None:
        transmit = self._host.transmit
        for data, addr in self._quic.datagrams_to_send(now=self._now()):
            transmit(data, addr)
        timer_at = self._quic.get_timer()
        if timer_at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._timer_at = timer_at
            if timer_at is not None:
                self._timer = asyncio.get_running_loop().call_at(timer_at, self._on_timer)

    def _drop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
