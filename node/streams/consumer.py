"""A stream consumer: one channel per eligible producer, merged into one bounded buffer.

``Subscriptions`` (sans I/O) decides which producers to subscribe to and when to retry; this
shell dials, runs one receiver task per channel and feeds the buffer. A receiver stops
reading while the buffer is full, so a slow reader holds at most ``buffer_size`` datums plus
one transport receive window per producer: the producer then sees the consumer stall.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from node._tasks import TaskScope
from node.discovery import CatalogEvent, PeerDeparted, PeerInfo
from node.errors import ConfigError, DecodeError, MosaikError
from node.primitives import Decoder
from node.streams._alarm import Alarm
from node.streams._context import Context
from node.streams.channels import ChannelInfo
from node.streams.config import HANDSHAKE_TIMEOUT, ConsumerConfig
from node.streams.errors import ConsumerClosed
from node.streams.messages import ALPN, StartStream, Subscribe, start_decoder
from node.streams.subscriptions import Action, Dial, Drop, Subscriptions, SyncCatalog
from node.streams.when import Signal, When
from node.transport import Connection, FramedStream, SocketAddr, codes
from node.transport.errors import ConnectError, ConnectionClosed

T = TypeVar("T")
log = logging.getLogger("mosaik.streams")

# Frames decoded per buffer hand-off: large enough to amortize, small enough to stay fair.
_MAX_BATCH = 1024


class _Malformed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False, slots=True)
class _Inbound:
    peer: PeerInfo
    generation: int
    task: asyncio.Task[None] | None = None
    conn: Connection | None = None
    connected_at: float | None = None
    datums: int = 0
    bytes: int = 0
    error: str | None = None
    ended: bool = False


class Consumer(Generic[T]):
    """Receives datums of type ``T`` from every eligible producer of its stream.

    An async iterator: ``async for datum in consumer`` (ends when the consumer is closed and
    drained), or ``await consumer.recv()``. Datums of one producer arrive in send order.
    """

    def __init__(self, context: Context, config: ConsumerConfig) -> None:
        self._context = context
        self.config = config
        self.stream_id = config.stream_id
        self.datum_type: Any = config.datum_type
        self._decoder: Decoder[T] = Decoder(config.datum_type)
        self._subscriptions = Subscriptions(config, context.rng)
        self._links: dict[Any, _Inbound] = {}
        self._buffer: deque[T] = deque()
        self._readable = asyncio.Event()
        self._space = Signal()
        self._putters = 0
        self._tasks = TaskScope(f"consumer/{config.stream_id.short()}")
        self._alarm = Alarm(self._tick)
        self._closed = False
        self._counters = context.metrics.stream(config.stream_id)
        self._datums_received = 0
        self._bytes_received = 0
        self.when = When(self._subscriptions.connected, config.online_when)

    def _start(self) -> None:
        now = time.time()
        actions: list[Action] = []
        for peer in self._context.discovery.catalog:
            actions += self._subscriptions.peer_seen(peer, now)
        self._apply(actions)

    # -- receiving ------------------------------------------------------------------------

    async def recv(self) -> T:
        """The next datum; raises ``ConsumerClosed`` once closed and drained."""
        buffer = self._buffer
        while not buffer:
            if self._closed:
                raise ConsumerClosed(f"consumer of stream {self.stream_id.short()} is closed")
            self._readable.clear()
            await self._readable.wait()
        datum = buffer.popleft()
        if self._putters and len(buffer) <= self.config.buffer_size // 2:
            self._space.notify()
        return datum

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.recv()
        except ConsumerClosed:
            raise StopAsyncIteration from None

    async def _put(self, datums: list[T]) -> None:
        buffer, capacity = self._buffer, self.config.buffer_size
        start = 0
        while start < len(datums):
            room = capacity - len(buffer)
            if room <= 0:
                self._putters += 1
                try:
                    await self._space.wait()
                finally:
                    self._putters -= 1
                continue
            buffer.extend(datums[start : start + room])
            start += room
            self._readable.set()

    # -- state ----------------------------------------------------------------------------

    def producers(self) -> list[ChannelInfo]:
        """Every producer channel (connected, connecting, waiting, terminated) with stats."""
        infos = []
        for peer, state, code, reason in self._subscriptions.channels():
            link = self._links.get(peer.peer_id)
            infos.append(
                ChannelInfo(
                    peer=peer,
                    state=state,
                    datums=link.datums if link else 0,
                    bytes=link.bytes if link else 0,
                    connected_at=link.connected_at if link else None,
                    close_code=code,
                    error=(link.error if link and link.error else reason),
                )
            )
        return infos

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id.hex(),
            "datum_type": getattr(self.datum_type, "__qualname__", repr(self.datum_type)),
            "online": self.when.is_online,
            "producers": sum(1 for _ in self._subscriptions.connected()),
            "buffered": len(self._buffer),
            "datums_received": self._datums_received,
            "bytes_received": self._bytes_received,
        }

    # -- the core's actions ---------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Dial):
                link = _Inbound(action.peer, action.generation)
                self._links[action.peer.peer_id] = link
                link.task = self._tasks.spawn(
                    self._run(link), f"{action.peer.peer_id.short()}/{action.generation}"
                )
            elif isinstance(action, SyncCatalog):
                self._tasks.spawn(self._sync(action), f"sync/{action.peer_id.short()}")
            elif isinstance(action, Drop):
                self._drop(action)
        self._alarm.arm(self._subscriptions.next_deadline())

    def _drop(self, action: Drop) -> None:
        link = self._links.pop(action.peer_id, None)
        if link is None:
            return
        if link.conn is not None and not link.conn.closed:
            link.conn.close(action.code, action.reason)
        elif link.task is not None:
            link.task.cancel()
        self.when.changed()

    def _on_event(self, event: CatalogEvent) -> None:
        peer_id = event.peer_id
        if isinstance(event, PeerDeparted):
            self._apply(self._subscriptions.peer_departed(peer_id))
        else:
            peer = self._context.discovery.peer_info(peer_id) or PeerInfo(event.entry)
            self._apply(self._subscriptions.peer_seen(peer, time.time()))
        if self._subscriptions.state(peer_id) is None:
            self._links.pop(peer_id, None)  # forgotten while waiting: keep no stats for it

    def _local_entry_changed(self) -> None:
        self._apply(self._subscriptions.local_entry_changed())

    def _tick(self) -> None:
        self._apply(self._subscriptions.tick(time.time()))

    async def _sync(self, action: SyncCatalog) -> None:
        try:
            await self._context.discovery.sync_with(action.peer_id)
        except MosaikError as exc:
            actions = self._subscriptions.closed(
                action.peer_id, action.generation, None, f"catalog sync failed: {exc}", time.time()
            )
        else:
            actions = self._subscriptions.synced(action.peer_id, action.generation)
        self._apply(actions)

    # -- one channel ----------------------------------------------------------------------

    async def _run(self, link: _Inbound) -> None:
        code: int | None = None
        reason = ""
        try:
            conn = link.conn = await self._dial(link.peer)
            stream = await conn.open_stream()
            await stream.send(Subscribe(self._context.network_id, self.stream_id))
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                reply = await stream.recv_as(start_decoder)
            if reply != StartStream(self.stream_id):
                raise _Malformed(f"unexpected handshake reply {reply!r}")
            link.connected_at = time.monotonic()
            self._subscriptions.connected_to(link.peer.peer_id, link.generation)
            self._context.metrics.channel_opened("consumer")
            self.when.changed()
            # The channel ends when its connection does, even while the buffer is full and
            # this task waits to hand over datums it already received.
            watcher = self._tasks.spawn(self._watch(link, conn), "watch")
            try:
                await self._receive(link, stream)
            finally:
                watcher.cancel()
            code, reason = codes.SUCCESS, "producer ended the stream"
        except ConnectionClosed as exc:
            code, reason = exc.code, str(exc)
        except _Malformed as exc:
            code, reason = codes.PROTOCOL_VIOLATION, exc.reason
            link.error = exc.reason
            log.warning("stream %s: %s", self.stream_id.short(), exc.reason)
        except DecodeError as exc:  # a malformed handshake reply (recv_as closed already)
            code, reason = codes.PROTOCOL_VIOLATION, f"malformed handshake reply: {exc}"
            link.error = reason
        except TimeoutError:
            reason = "producer did not answer the subscription in time"
        except ConnectError as exc:
            reason = str(exc)
        finally:
            if link.conn is not None and not link.conn.closed:
                link.conn.close(code if code is not None else codes.CANCELLED, reason)
        self._ended(link, code, reason)

    async def _watch(self, link: _Inbound, conn: Connection) -> None:
        # Channel connections are not pooled, so the endpoint does not keep them alive: ping
        # so that a quiet stream outlives the QUIC idle timeout.
        interval = self._context.endpoint.config.keepalive_interval
        while True:
            try:
                async with asyncio.timeout(interval):
                    closed = await conn.wait_closed()
                break
            except TimeoutError:
                conn.ping()
        self._ended(link, closed.code, str(closed))

    def _ended(self, link: _Inbound, code: int | None, reason: str) -> None:
        """Report the end of ``link`` to the core, once."""
        if link.ended:
            return
        link.ended = True
        if link.connected_at is not None:
            self._context.metrics.channel_closed("consumer")
        self.when.changed()
        self._apply(
            self._subscriptions.closed(
                link.peer.peer_id, link.generation, code, reason, time.time()
            )
        )

    async def _dial(self, peer: PeerInfo) -> Connection:
        last = "it advertises no address"
        for text in peer.entry.addrs:
            try:
                addr = SocketAddr.parse(text)
            except ConfigError as exc:
                last = str(exc)
                continue
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    return await self._context.endpoint.connect(addr, ALPN, peer.peer_id)
            except ConnectError as exc:
                last = str(exc)
            except TimeoutError:
                last = f"no answer from {addr} within {HANDSHAKE_TIMEOUT:g} s"
        raise ConnectError(f"producer {peer.peer_id.short()} is unreachable: {last}")

    async def _receive(self, link: _Inbound, stream: FramedStream) -> None:
        decode = self._decoder.decode
        counters = self._counters
        while (body := await stream.recv()) is not None:
            bodies = [body]
            while len(bodies) < _MAX_BATCH and (more := stream.recv_nowait()) is not None:
                bodies.append(more)
            try:
                datums = [decode(b) for b in bodies]
                bad = None
            except DecodeError:
                datums, bad = self._decode_until_bad(bodies)
            size = sum(map(len, bodies[: len(datums)]))
            link.datums += len(datums)
            link.bytes += size
            self._datums_received += len(datums)
            self._bytes_received += size
            counters.items_received.inc(len(datums))
            counters.bytes_received.inc(size)
            await self._put(datums)
            if bad is not None:
                reason = f"malformed datum from producer {link.peer.peer_id.short()}: {bad}"
                link.error = reason
                assert link.conn is not None
                link.conn.close(codes.PROTOCOL_VIOLATION, reason)
                raise _Malformed(reason)

    def _decode_until_bad(self, bodies: list[bytes]) -> tuple[list[T], DecodeError]:
        datums: list[T] = []
        for body in bodies:
            try:
                datums.append(self._decoder.decode(body))
            except DecodeError as exc:
                return datums, exc
        raise AssertionError("a body that failed to decode decoded on the second try")

    # -- lifetime -------------------------------------------------------------------------

    async def close(self) -> None:
        """Unsubscribe from every producer; iteration ends once the buffer is drained."""
        if self._closed:
            return
        self._closed = True
        self._alarm.cancel()
        for action in self._subscriptions.close():
            if isinstance(action, Drop):
                self._drop(action)
        await self._tasks.aclose()
        self._readable.set()
        self._space.notify()
        self.when.changed()
        self._context.consumer_closed(self)

    def __repr__(self) -> str:
        name = getattr(self.datum_type, "__qualname__", repr(self.datum_type))
        return f"Consumer({name}, stream={self.stream_id.short()}, closed={self._closed})"
