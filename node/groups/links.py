"""Outbound streams of one group: one per fellow peer, each drained by its own writer task.

Sending never waits: ``send`` queues encoded frames, the peer's writer batches whatever is
queued into one write. A link that fails drops its queue (Raft retransmits what matters) and
reconnects with backoff; a refused link retries slowly, since the refusal usually lasts until
the catalog changes. The acceptor's side of each stream lives in ``runtime.serve``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from node._tasks import TaskScope
from node.errors import DecodeError, MosaikError
from node.groups.wire import (
    HANDSHAKE_TIMEOUT,
    Hello,
    Refused,
    Welcome,
    fragments,
    reply_decoder,
)
from node.primitives import PeerId
from node.transport import Connection, FramedStream, codes

log = logging.getLogger("mosaik.groups")

MAX_QUEUED = 8192
"""Frames queued for one peer beyond this drop the oldest: the peer is not keeping up."""
_MAX_BATCH_BYTES = 1 << 20
_RETRY_MIN, _RETRY_MAX = 0.05, 1.0
_REFUSED_RETRY = 1.0

Connect = Callable[[PeerId], Awaitable[Connection]]


class LinkOwner(Protocol):
    """What links ask of their group runtime."""

    def hello(self, peer: PeerId) -> Hello: ...

    def welcomed(self, peer: PeerId, welcome: Welcome) -> str | None:
        """None to accept the acceptor's welcome, else why not."""
        ...

    def link_up(self, peer: PeerId) -> None: ...

    def link_down(self, peer: PeerId) -> None: ...


class _Stop(Exception):
    """The link ended for a reason already logged; ``retry`` says how soon to try again."""

    def __init__(self, retry: float) -> None:
        super().__init__()
        self.retry = retry


class _Link:
    __slots__ = ("ended", "peer", "queue", "ready", "task", "up")

    def __init__(self, peer: PeerId) -> None:
        self.peer = peer
        self.queue: deque[bytes] = deque()
        self.ready = asyncio.Event()
        self.up = False
        self.ended: tuple[str, float] | None = None
        """Why the acceptor ended the link, and how soon to retry."""
        self.task: asyncio.Task[None] | None = None


class Links:
    """The outbound links of one group runtime."""

    def __init__(
        self, owner: LinkOwner, connect: Connect, max_frame: int, scope: TaskScope, name: str
    ) -> None:
        self._owner = owner
        self._connect = connect
        self._max_frame = max_frame
        self._scope = scope
        self._name = name
        self._links: dict[PeerId, _Link] = {}
        self.frames_sent = 0
        self.frames_dropped = 0
        self.refusals: dict[PeerId, str] = {}
        """Peers whose last answer to our handshake was a refusal, with its code and reason."""

    def __contains__(self, peer: object) -> bool:
        return peer in self._links

    def is_up(self, peer: PeerId) -> bool:
        link = self._links.get(peer)
        return link is not None and link.up

    def ensure(self, peer: PeerId) -> None:
        """Keep a link to ``peer`` (connects in the background)."""
        if peer in self._links:
            return
        link = _Link(peer)
        self._links[peer] = link
        link.task = self._scope.spawn(self._run(link), f"{self._name}/link/{peer.short()}")

    def drop(self, peer: PeerId) -> None:
        link = self._links.pop(peer, None)
        if link is not None and link.task is not None:
            link.task.cancel()

    def send(self, peer: PeerId, body: bytes, *, first: bool = False) -> bool:
        """Queue one encoded frame for ``peer`` (ahead of the others if ``first``); False if
        there is no link to it."""
        link = self._links.get(peer)
        if link is None:
            return False
        queue = link.queue
        pieces = list(fragments(body, self._max_frame))
        if first:
            queue.extendleft(reversed(pieces))
        else:
            for piece in pieces:
                if len(queue) >= MAX_QUEUED:
                    queue.popleft()
                    self.frames_dropped += 1
                queue.append(piece)
        link.ready.set()
        return True

    def broadcast(self, body: bytes) -> None:
        """Queue ``body`` on every link that is up (a link that connects later says it in its
        ``Hello``)."""
        for peer, link in self._links.items():
            if link.up:
                self.send(peer, body)

    # -- one link -----------------------------------------------------------------------------

    async def _run(self, link: _Link) -> None:
        delay = _RETRY_MIN
        while True:
            try:
                await self._session(link)
                retry = _RETRY_MIN
            except _Stop as stop:
                retry = stop.retry
            except (MosaikError, TimeoutError) as exc:
                log.debug("group %s: link to %s failed: %s", self._name, link.peer.short(), exc)
                retry = delay
            if link.up:
                link.up = False
                delay = _RETRY_MIN
                self._owner.link_down(link.peer)
            else:
                delay = min(delay * 2, _RETRY_MAX)
            link.queue.clear()
            link.ended = None
            await asyncio.sleep(retry)

    async def _session(self, link: _Link) -> None:
        peer = link.peer
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            conn = await self._connect(peer)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                stream = await conn.open_stream()
                await stream.send(self._owner.hello(peer))
                body = await stream.recv()
        except TimeoutError:
            # A connection to a peer that died without closing it looks open until QUIC's idle
            # timeout: close it so that the next attempt dials afresh.
            conn.close(codes.GROUP_TIMEOUT, "no handshake reply")
            raise
        if body is None:
            raise _Stop(_RETRY_MAX)
        try:
            reply = reply_decoder.decode(body)
        except DecodeError as exc:
            log.warning("group %s: bad handshake reply from %s: %s", self._name, peer.short(), exc)
            conn.close(codes.GROUP_INVALID_HANDSHAKE, "malformed handshake reply")
            raise _Stop(_REFUSED_RETRY) from None
        if isinstance(reply, Refused):
            refusal = f"{codes.describe(reply.code)}: {reply.reason}"
            log.info("group %s: %s refused us: %s", self._name, peer.short(), refusal)
            self.refusals[peer] = refusal
            raise _Stop(_REFUSED_RETRY)
        problem = self._owner.welcomed(peer, reply)
        if problem is not None:
            log.warning("group %s: not linking to %s: %s", self._name, peer.short(), problem)
            stream.finish()
            raise _Stop(_REFUSED_RETRY)
        link.up = True
        self.refusals.pop(peer, None)
        self._owner.link_up(peer)
        watcher = self._scope.spawn(self._watch(link, stream), f"{self._name}/watch")
        try:
            await self._pump(link, stream)
        finally:
            watcher.cancel()

    async def _pump(self, link: _Link, stream: FramedStream) -> None:
        queue = link.queue
        while True:
            if link.ended is not None:
                reason, retry = link.ended
                log.debug("group %s: link to %s ended: %s", self._name, link.peer.short(), reason)
                raise _Stop(retry)
            if not queue:
                link.ready.clear()
                await link.ready.wait()
                continue
            batch: list[bytes] = []
            size = 0
            while queue and size < _MAX_BATCH_BYTES:
                body = queue.popleft()
                batch.append(body)
                size += len(body)
            await stream.send_bodies(batch)
            self.frames_sent += len(batch)

    async def _watch(self, link: _Link, stream: FramedStream) -> None:
        """The acceptor only speaks again to end the link (a ``Refused``, then the end)."""
        retry = _RETRY_MIN
        try:
            body = await stream.recv()
            reason = "stream ended"
            if body is not None:
                retry = _REFUSED_RETRY
                try:
                    reply = reply_decoder.decode(body)
                    if isinstance(reply, Refused):
                        reason = f"{codes.describe(reply.code)}: {reply.reason}"
                        log.info(
                            "group %s: %s ended our link: %s", self._name, link.peer.short(), reason
                        )
                except DecodeError:
                    reason = "unexpected frame from the acceptor"
        except MosaikError as exc:
            reason = str(exc)
        link.ended = (reason, retry)
        link.ready.set()
