"""A stream producer: fan-out of encoded datums to every admitted consumer.

Each subscription is one QUIC connection owned by the streams ALPN handler; its task runs the
channel's writer here. ``send`` encodes a datum once and appends it to the ``FanoutRing``;
each writer takes everything its consumer has not received yet and writes it as one batch of
frames, so under load many datums share a write and a packet. Order is the order of ``send``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from node.discovery import CatalogEvent, PeerDeparted, PeerInfo
from node.primitives import encode
from node.streams._alarm import Alarm
from node.streams._context import Context
from node.streams.admission import Admission, Refused, Revoked
from node.streams.channels import ChannelInfo, ChannelState
from node.streams.config import Lagging, ProducerConfig
from node.streams.errors import Closed, Full, InvalidDatum, Offline
from node.streams.messages import StartStream
from node.streams.ring import FanoutRing
from node.streams.when import Signal, When
from node.transport import Connection, FramedStream, codes
from node.transport.errors import ConnectionClosed

T = TypeVar("T")
log = logging.getLogger("mosaik.streams")

# The codec's hook raises NotImplementedError for types it cannot encode.
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, NotImplementedError, msgspec.EncodeError)


def _loop_time(monotonic: float | None) -> float | None:
    """A ``time.monotonic`` deadline on the event loop's clock."""
    if monotonic is None:
        return None
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())


@dataclass(eq=False, slots=True)
class _Outbound:
    key: int
    peer: PeerInfo
    conn: Connection
    stream: FramedStream
    connected_at: float = field(default_factory=time.monotonic)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    datums: int = 0
    bytes: int = 0
    dropped: int = 0


class Producer(Generic[T]):
    """Sends datums of type ``T`` to every consumer of its stream.

    Created by ``net.streams.produce(T)``; there is one producer per stream id on a node.
    """

    def __init__(self, context: Context, config: ProducerConfig) -> None:
        self._context = context
        self.config = config
        self.stream_id = config.stream_id
        self.datum_type: Any = config.datum_type
        self._check_type = config.datum_type if isinstance(config.datum_type, type) else None
        self._max_frame = context.endpoint.max_frame
        self._admission = Admission(config)
        self._ring: FanoutRing[int] = FanoutRing(config.buffer_size)
        self._channels: dict[int, _Outbound] = {}
        self._idle: list[_Outbound] = []
        self._room = Signal()
        self._waiting = 0
        self._keys = itertools.count(1)
        self._closed = False
        self.when = When(self._peers, config.online_when)
        self._online = self.when.is_online
        self._alarm = Alarm(self._tick)
        self._counters = context.metrics.stream(config.stream_id)
        self._undelivered = 0
        self._datums_sent = 0
        self._bytes_sent = 0
        self._dropped = 0

    # -- sending --------------------------------------------------------------------------

    async def send(self, datum: T) -> None:
        """Send ``datum`` to every subscriber; waits until online and for buffer room.

        Raises ``InvalidDatum`` for a datum that cannot be sent, ``Closed`` once closed.
        """
        body = self._encode(datum)
        while True:
            if self._closed:
                raise Closed("producer is closed", datum)
            wake_at = None
            if self._online:
                if not self._channels:
                    self._deliver_nowhere(datum)
                    return
                if self._ring.room() > 0 or self._make_room():
                    self._push(body)
                    return
                wake_at = self._ring.next_lag_deadline(self.config.lag_timeout)
            self._waiting += 1
            try:
                async with asyncio.timeout_at(_loop_time(wake_at)):
                    await self._room.wait()
            except TimeoutError:
                pass  # a stalled consumer's grace ran out: apply the lagging policy
            finally:
                self._waiting -= 1

    def try_send(self, datum: T) -> None:
        """Send ``datum`` now or raise ``Offline``, ``Full`` or ``Closed`` (each carries the
        datum back); never waits."""
        body = self._encode(datum)
        if self._closed:
            raise Closed("producer is closed", datum)
        if not self._online:
            raise Offline("producer is offline: its online_when condition is not met", datum)
        if not self._channels:
            self._deliver_nowhere(datum)
        elif self._ring.room() > 0 or self._make_room():
            self._push(body)
        else:
            raise Full(f"producer buffer of {self._ring.capacity} datums is full", datum)

    def _encode(self, datum: T) -> bytes:
        if self._check_type is not None and not isinstance(datum, self._check_type):
            raise InvalidDatum(
                f"stream {self.stream_id.short()} carries {self._check_type.__qualname__}, "
                f"got {type(datum).__qualname__}"
            )
        try:
            body = encode(datum)
        except _ENCODE_ERRORS as exc:
            raise InvalidDatum(f"cannot encode {type(datum).__qualname__}: {exc}") from None
        if len(body) > self._max_frame:
            raise InvalidDatum(
                f"datum encodes to {len(body)} bytes, above the maximum frame of "
                f"{self._max_frame} bytes"
            )
        return body

    def _push(self, body: bytes) -> None:
        self._ring.push(body)
        if self._idle:
            for channel in self._idle:
                channel.wake.set()
            self._idle.clear()

    def _deliver_nowhere(self, datum: T) -> None:
        self._undelivered += 1
        self._counters.dropped.inc()
        if self.config.undelivered is not None:
            self.config.undelivered(datum)

    def _make_room(self) -> bool:
        """Apply the lagging policy to stalled subscribers holding a full ring."""
        lagging = self._ring.lagging(time.monotonic(), self.config.lag_timeout)
        for key in lagging:
            channel = self._channels[key]
            if self.config.lagging is Lagging.DISCONNECT:
                log.warning(
                    "stream %s: disconnecting lagging consumer %s",
                    self.stream_id.short(),
                    channel.peer.peer_id.short(),
                )
                self._end(channel, codes.STREAM_TOO_SLOW, "consumer lags behind the producer")
            else:
                dropped = self._ring.drop_oldest(key, 1)
                channel.dropped += dropped
                self._dropped += dropped
                self._counters.dropped.inc(dropped)
        return self._ring.room() > 0

    # -- state ----------------------------------------------------------------------------

    def _peers(self) -> list[PeerInfo]:
        return [channel.peer for channel in self._channels.values()]

    def consumers(self) -> list[ChannelInfo]:
        """The connected consumers with their statistics."""
        return [
            ChannelInfo(
                peer=c.peer,
                state=ChannelState.CONNECTED,
                datums=c.datums,
                bytes=c.bytes,
                dropped=c.dropped,
                connected_at=c.connected_at,
            )
            for c in self._channels.values()
        ]

    @property
    def is_online(self) -> bool:
        return self._online

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id.hex(),
            "datum_type": getattr(self.datum_type, "__qualname__", repr(self.datum_type)),
            "online": self._online,
            "consumers": len(self._channels),
            "buffered": self._ring.head - self._ring.tail,
            "datums_sent": self._datums_sent,
            "bytes_sent": self._bytes_sent,
            "dropped": self._dropped,
            "undelivered": self._undelivered,
        }

    def _changed(self) -> None:
        self._online = self.when.is_online
        self.when.changed()
        self._room.notify()

    # -- subscriptions (driven by Streams) ------------------------------------------------

    async def _serve(self, conn: Connection, stream: FramedStream, peer: PeerInfo) -> None:
        """Admit and then feed one subscription; returns when the channel ends."""
        metrics = self._context.metrics
        key = next(self._keys)
        if self._closed:
            conn.close(codes.STREAM_NOT_FOUND, "producer closed")
            return
        verdict = self._admission.admit(key, peer, time.time())
        if isinstance(verdict, Refused):
            metrics.rejected(verdict.code)
            log.info(
                "stream %s: refused consumer %s: %s",
                self.stream_id.short(),
                peer.peer_id.short(),
                verdict.reason,
            )
            conn.close(verdict.code, verdict.reason)
            return
        self._alarm.arm(self._admission.next_deadline())
        try:
            await stream.send(StartStream(self.stream_id))
        except ConnectionClosed:
            self._admission.release(key)
            return
        if self._closed or key not in self._admission.subscribers:
            # Closed or revoked while the reply was on its way.
            conn.close(codes.STREAM_NOT_ALLOWED, "subscription revoked")
            self._admission.release(key)
            return
        channel = _Outbound(key, self._admission.subscribers[key], conn, stream)
        self._channels[key] = channel
        self._ring.add(key)
        metrics.accepted()
        metrics.channel_opened("producer")
        self._changed()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch_close(channel))
                await self._write(channel)
        finally:
            self._forget(channel)

    async def _watch_close(self, channel: _Outbound) -> None:
        await channel.conn.wait_closed()
        channel.wake.set()

    async def _write(self, channel: _Outbound) -> None:
        ring, key, conn, stream = self._ring, channel.key, channel.conn, channel.stream
        counters = self._counters
        try:
            while not conn.closed and key in ring:
                batch = ring.take(key)
                if not batch:
                    channel.wake.clear()
                    self._idle.append(channel)
                    await channel.wake.wait()
                    continue
                if self._waiting:
                    self._room.notify()
                if conn.unacked_bytes(stream) > conn.send_high_water:
                    # This write will wait on the transport: the consumer is not keeping up.
                    ring.set_stalled(key, time.monotonic())
                    if self._waiting:
                        self._room.notify()
                try:
                    await stream.send_bodies(batch)
                finally:
                    ring.set_stalled(key, None)
                size = sum(map(len, batch))
                channel.datums += len(batch)
                channel.bytes += size
                self._datums_sent += len(batch)
                self._bytes_sent += size
                counters.items_sent.inc(len(batch))
                counters.bytes_sent.inc(size)
        except ConnectionClosed:
            return

    def _end(self, channel: _Outbound, code: int, reason: str) -> None:
        channel.conn.close(code, reason)
        self._forget(channel)

    def _forget(self, channel: _Outbound) -> None:
        if self._channels.pop(channel.key, None) is None:
            return
        if not channel.conn.closed:
            channel.conn.close(codes.SUCCESS)
        self._ring.remove(channel.key)
        self._admission.release(channel.key)
        channel.wake.set()
        self._context.metrics.channel_closed("producer")
        self._changed()

    def _on_event(self, event: CatalogEvent) -> None:
        if isinstance(event, PeerDeparted):
            revoked = self._admission.peer_departed(event.peer_id)
        else:
            peer = self._context.discovery.peer_info(event.peer_id) or PeerInfo(event.entry)
            revoked = self._admission.peer_changed(peer, time.time())
            subscribed = False
            for channel in self._channels.values():
                if channel.peer.peer_id == peer.peer_id:
                    channel.peer = peer
                    subscribed = True
            if subscribed:  # its tags may count for online_when and when.subscribed
                self._changed()
        self._revoke(revoked)

    def _tick(self) -> None:
        self._revoke(self._admission.tick(time.time()))

    def _revoke(self, revoked: list[Revoked]) -> None:
        for item in revoked:
            channel = self._channels.get(item.key)
            if channel is not None:
                log.info(
                    "stream %s: revoking consumer %s: %s",
                    self.stream_id.short(),
                    channel.peer.peer_id.short(),
                    item.reason,
                )
                self._end(channel, item.code, item.reason)
        self._alarm.arm(self._admission.next_deadline())

    # -- lifetime -------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop producing: consumers are disconnected with GracefulShutdown and the stream is
        no longer advertised. Pending ``send`` calls raise ``Closed``."""
        if self._closed:
            return
        self._closed = True
        self._alarm.cancel()
        for channel in list(self._channels.values()):
            self._end(channel, codes.GRACEFUL_SHUTDOWN, "producer closed")
        self._changed()
        self._context.producer_closed(self)

    def __repr__(self) -> str:
        name = getattr(self.datum_type, "__qualname__", repr(self.datum_type))
        return (
            f"Producer({name}, stream={self.stream_id.short()}, "
            f"consumers={len(self._channels)}, online={self._online})"
        )
