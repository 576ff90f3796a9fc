"""What one group says to its peers: handshakes, the frames it receives, forwarded commands.

Outbound streams are ``links.Links``; this module is their owner (it builds ``Hello``s and
checks ``Welcome``s) and serves the inbound side: after the handshake it reads the opener's
frames, drops what is malformed (with a log line naming the peer and the reason), and queues
the rest for the runtime's driver as ``inputs``. Raft messages are queued only if their
``sender`` is the peer the stream authenticated and the peer's lineage is ours
(``ExchangeHost.accepts``). It sees its runtime only as an ``ports.ExchangeHost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time

from node._tasks import TaskScope
from node.errors import DecodeError, MosaikError
from node.groups import ids
from node.groups.inputs import ForwardReceived, LinkLost, MessageReceived
from node.groups.links import Links
from node.groups.peers import NOT_ADVERTISED, NOT_IN_CATALOG, GroupPeers
from node.groups.pending import Assignment, Pending
from node.groups.ports import ExchangeHost, NodeContext
from node.groups.raft import NotLeader
from node.groups.stats import GroupStats
from node.groups.wire import (
    ClusterChanged,
    Forward,
    ForwardAccepted,
    ForwardRefused,
    Fragment,
    GroupFrame,
    Hello,
    Reassembly,
    Refused,
    Welcome,
    frame_decoder,
)
from node.primitives import Digest, GroupId, PeerId, encode
from node.transport import FramedStream, codes

log = logging.getLogger("mosaik.groups")

_CATALOG_WAIT = 2.0


class Exchange:
    """The peer-facing side of one group runtime."""

    def __init__(
        self,
        host: ExchangeHost,
        node: NodeContext,
        *,
        gid: GroupId,
        secret: Digest,
        peers: GroupPeers,
        pending: Pending,
        stats: GroupStats,
        scope: TaskScope,
        name: str,
    ) -> None:
        self._host = host
        self._gid = gid
        self._secret = secret
        self._self = node.peer_id
        self._discovery = node.discovery
        self._peers = peers
        self._pending = pending
        self._stats = stats
        self._scope = scope
        self._name = name
        self.links = Links(self, node.connect, node.max_frame, scope, name)
        self._inbound: dict[PeerId, FramedStream] = {}

    def close(self) -> None:
        for stream in self._inbound.values():
            stream.finish()
        self._inbound.clear()

    # -- outbound: the links' owner -----------------------------------------------------------

    def _proof(self, sender: PeerId, receiver: PeerId) -> bytes:
        return ids.membership_proof(self._secret, self._gid, sender, receiver)

    def hello(self, peer: PeerId) -> Hello:
        return Hello(self._gid, self._proof(self._self, peer), self._host.cluster)

    def welcomed(self, peer: PeerId, welcome: Welcome) -> str | None:
        if not hmac.compare_digest(welcome.proof, self._proof(peer, self._self)):
            return "its proof of the group key is wrong"
        self._host.note_cluster(peer, welcome.cluster)
        return None

    def link_up(self, peer: PeerId) -> None:
        # The lineage may have changed since the Hello was built: say it before anything else.
        self.links.send(peer, encode(ClusterChanged(self._host.cluster)), first=True)

    def link_down(self, peer: PeerId) -> None:
        self._host.submit(LinkLost(peer))

    # -- inbound ------------------------------------------------------------------------------

    async def serve(self, peer: PeerId, stream: FramedStream, hello: Hello) -> None:
        """Admit ``peer``'s stream and read its frames until it ends."""
        host = self._host
        if not hmac.compare_digest(hello.proof, self._proof(peer, self._self)):
            await refuse(stream, codes.GROUP_INVALID_PROOF, "wrong proof of the group key")
            return
        reason = await self._admission(peer)
        if reason is not None:
            log.info("group %s: refusing %s: %s", self._name, peer.short(), reason)
            await refuse(stream, codes.GROUP_NOT_ALLOWED, reason)
            return
        await stream.send(Welcome(self._proof(self._self, peer), host.cluster))
        previous = self._inbound.get(peer)
        if previous is not None:
            previous.finish()  # the peer reconnected: its old stream is dead or dying
        self._inbound[peer] = stream
        host.note_cluster(peer, hello.cluster)
        self._peers.heard(peer, time.monotonic())
        try:
            await self._read(peer, stream)
        finally:
            if self._inbound.get(peer) is stream:
                del self._inbound[peer]
            if not stream.connection.closed:
                stream.finish()

    async def _admission(self, peer: PeerId) -> str | None:
        """Why ``peer`` may not join now, or None. A peer missing from our catalog (or whose
        entry there predates its joining) is given a short while for gossip to catch up."""
        discovery, peers = self._discovery, self._peers
        reason = peers.check(discovery.peer_info(peer), time.time())
        if reason in (NOT_IN_CATALOG, NOT_ADVERTISED):
            try:
                async with asyncio.timeout(_CATALOG_WAIT):
                    if reason == NOT_IN_CATALOG:
                        with contextlib.suppress(MosaikError):
                            await discovery.sync_with(peer)
                    while (reason := peers.check(discovery.peer_info(peer), time.time())) in (
                        NOT_IN_CATALOG,
                        NOT_ADVERTISED,
                    ):
                        await discovery.changed()
            except TimeoutError:
                pass
        if reason is None and peer not in peers.candidates:
            self._host.catalog_changed()
        return reason

    def end_inbound(self, peer: PeerId, reason: str) -> None:
        """Stop admitting ``peer``: tell it why and end its stream."""
        stream = self._inbound.pop(peer, None)
        if stream is not None:
            self._scope.spawn(refuse(stream, codes.GROUP_NOT_ALLOWED, reason), "refuse")

    async def _read(self, peer: PeerId, stream: FramedStream) -> None:
        reassembly = Reassembly()
        peers = self._peers
        async for body in stream:
            if self._inbound.get(peer) is not stream:
                return  # refused meanwhile
            peers.last_heard[peer] = time.monotonic()
            frame = self._decode(peer, body)
            if isinstance(frame, Fragment):
                try:
                    joined = reassembly.add(frame)
                except ValueError as exc:
                    self._malformed(peer, str(exc))
                    continue
                if joined is None:
                    continue
                frame = self._decode(peer, joined)
            if frame is not None:
                self._dispatch(peer, frame)

    def _decode(self, peer: PeerId, body: bytes) -> GroupFrame | None:
        try:
            return frame_decoder.decode(body)
        except DecodeError as exc:
            self._malformed(peer, str(exc))
            return None

    def _malformed(self, peer: PeerId, reason: str) -> None:
        self._stats.malformed_frames += 1
        log.warning(
            "group %s: dropped a malformed frame from %s: %s", self._name, peer.short(), reason
        )

    def _dispatch(self, peer: PeerId, frame: GroupFrame) -> None:
        host = self._host
        if isinstance(frame, ClusterChanged):
            host.note_cluster(peer, frame.cluster)
        elif isinstance(frame, Forward):
            host.submit(ForwardReceived(peer, frame))
        elif isinstance(frame, ForwardAccepted):
            self._pending.forward_answered(frame.request, Assignment(frame.index, frame.term))
        elif isinstance(frame, ForwardRefused):
            self._pending.forward_answered(frame.request, NotLeader(frame.leader))
        elif isinstance(frame, Fragment):
            self._malformed(peer, "a fragment inside a fragmented frame")
        elif frame.sender != peer:
            name = type(frame).__name__
            self._malformed(peer, f"a {name} claiming to come from {frame.sender.short()}")
        elif host.accepts(peer):
            host.submit(MessageReceived(frame))


async def refuse(stream: FramedStream, code: int, reason: str) -> None:
    """Tell the opener why its stream is refused, then end it."""
    try:
        await stream.send(Refused(code, reason))
        stream.finish()
    except MosaikError:
        pass
