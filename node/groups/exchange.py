"""What one group says to its peers: handshakes, the frames it receives, forwarded commands.

Outbound streams are ``links.Links``; this module is their owner (it builds ``Hello``s and
checks ``Welcome``s) and serves the inbound side: after the handshake it reads the opener's
frames, drops what is malformed (with a log line naming the peer and the reason), and queues
the rest for the runtime's driver. Raft messages are stepped only if their ``sender`` is the
peer the stream authenticated and the peer's lineage is ours (``lineage.Lineage.accepts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from typing import TYPE_CHECKING

from node._tasks import TaskScope
from node.errors import DecodeError, MosaikError
from node.groups import ids
from node.groups.links import Links
from node.groups.peers import NOT_ADVERTISED, NOT_IN_CATALOG
from node.groups.pending import Assignment
from node.groups.raft import NotLeader, ProposalDropped
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
from node.primitives import PeerId, encode
from node.transport import FramedStream, codes

if TYPE_CHECKING:
    from node.groups.runtime import GroupRuntime

log = logging.getLogger("mosaik.groups")

_CATALOG_WAIT = 2.0


class Exchange:
    """The peer-facing side of one group runtime."""

    def __init__(self, runtime: GroupRuntime, scope: TaskScope) -> None:
        self._rt = runtime
        self._scope = scope
        self._self = runtime.node.peer_id
        self.links = Links(self, runtime.node.connect, runtime.node.max_frame, scope, runtime.name)
        self._inbound: dict[PeerId, FramedStream] = {}

    def close(self) -> None:
        for stream in self._inbound.values():
            stream.finish()
        self._inbound.clear()

    # -- outbound: the links' owner -----------------------------------------------------------

    def hello(self, peer: PeerId) -> Hello:
        rt = self._rt
        proof = ids.membership_proof(rt.spec.secret, rt.gid, self._self, peer)
        return Hello(rt.gid, proof, rt.lineage.cluster)

    def welcomed(self, peer: PeerId, welcome: Welcome) -> str | None:
        rt = self._rt
        expected = ids.membership_proof(rt.spec.secret, rt.gid, peer, self._self)
        if not hmac.compare_digest(welcome.proof, expected):
            return "its proof of the group key is wrong"
        rt.note_cluster(peer, welcome.cluster)
        return None

    def link_up(self, peer: PeerId) -> None:
        # The lineage may have changed since the Hello was built: say it before anything else.
        self.links.send(peer, encode(ClusterChanged(self._rt.lineage.cluster)), first=True)

    def link_down(self, peer: PeerId) -> None:
        rt = self._rt
        rt.enqueue(lambda: rt.core.report_unreachable(peer))

    # -- inbound ------------------------------------------------------------------------------

    async def serve(self, peer: PeerId, stream: FramedStream, hello: Hello) -> None:
        """Admit ``peer``'s stream and read its frames until it ends."""
        rt = self._rt
        expected = ids.membership_proof(rt.spec.secret, rt.gid, peer, self._self)
        if not hmac.compare_digest(hello.proof, expected):
            await refuse(stream, codes.GROUP_INVALID_PROOF, "wrong proof of the group key")
            return
        reason = await self._admission(peer)
        if reason is not None:
            log.info("group %s: refusing %s: %s", rt.name, peer.short(), reason)
            await refuse(stream, codes.GROUP_NOT_ALLOWED, reason)
            return
        proof = ids.membership_proof(rt.spec.secret, rt.gid, self._self, peer)
        await stream.send(Welcome(proof, rt.lineage.cluster))
        previous = self._inbound.get(peer)
        if previous is not None:
            previous.finish()  # the peer reconnected: its old stream is dead or dying
        self._inbound[peer] = stream
        rt.note_cluster(peer, hello.cluster)
        rt.peers.heard(peer, time.monotonic())
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
        rt = self._rt
        discovery = rt.node.discovery
        reason = rt.peers.check(discovery.peer_info(peer), time.time())
        if reason in (NOT_IN_CATALOG, NOT_ADVERTISED):
            try:
                async with asyncio.timeout(_CATALOG_WAIT):
                    if reason == NOT_IN_CATALOG:
                        with contextlib.suppress(MosaikError):
                            await discovery.sync_with(peer)
                    while (reason := rt.peers.check(discovery.peer_info(peer), time.time())) in (
                        NOT_IN_CATALOG,
                        NOT_ADVERTISED,
                    ):
                        await discovery.changed()
            except TimeoutError:
                pass
        if reason is None and peer not in rt.peers.candidates:
            rt.catalog_changed()
        return reason

    def end_inbound(self, peer: PeerId, reason: str) -> None:
        """Stop admitting ``peer``: tell it why and end its stream."""
        stream = self._inbound.pop(peer, None)
        if stream is not None:
            self._scope.spawn(refuse(stream, codes.GROUP_NOT_ALLOWED, reason), "refuse")

    async def _read(self, peer: PeerId, stream: FramedStream) -> None:
        rt = self._rt
        reassembly = Reassembly()
        peers = rt.peers
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
        self._rt.stats.malformed_frames += 1
        log.warning(
            "group %s: dropped a malformed frame from %s: %s", self._rt.name, peer.short(), reason
        )

    def _dispatch(self, peer: PeerId, frame: GroupFrame) -> None:
        rt = self._rt
        if isinstance(frame, ClusterChanged):
            rt.note_cluster(peer, frame.cluster)
        elif isinstance(frame, Forward):
            rt.enqueue(lambda: self._serve_forward(peer, frame))
        elif isinstance(frame, ForwardAccepted):
            rt.pending.forward_answered(frame.request, Assignment(frame.index, frame.term))
        elif isinstance(frame, ForwardRefused):
            rt.pending.forward_answered(frame.request, NotLeader(frame.leader))
        elif isinstance(frame, Fragment):
            self._malformed(peer, "a fragment inside a fragmented frame")
        elif frame.sender != peer:
            name = type(frame).__name__
            self._malformed(peer, f"a {name} claiming to come from {frame.sender.short()}")
        elif rt.lineage.accepts(rt.peers.clusters.get(peer)):
            rt.step(frame)

    def _serve_forward(self, peer: PeerId, forward: Forward) -> None:
        """On the driver: append a follower's commands if we lead; answer either way."""
        rt = self._rt
        core = rt.core
        reply: ForwardAccepted | ForwardRefused
        if not forward.commands:
            reply = ForwardRefused(forward.request, core.leader, "no commands")
        elif not rt.lineage.accepts(rt.peers.clusters.get(peer)):
            reply = ForwardRefused(forward.request, None, "the sender is in a rival cluster")
        else:
            try:
                first = core.propose(forward.commands[0])
                for data in forward.commands[1:]:
                    core.propose(data)
                rt.stats.proposals += len(forward.commands)
                reply = ForwardAccepted(forward.request, first, core.term)
            except NotLeader as exc:
                reply = ForwardRefused(forward.request, exc.leader, str(exc))
            except ProposalDropped as exc:
                reply = ForwardRefused(forward.request, core.id, str(exc))
        self.links.send(peer, encode(reply))


async def refuse(stream: FramedStream, code: int, reason: str) -> None:
    """Tell the opener why its stream is refused, then end it."""
    try:
        await stream.send(Refused(code, reason))
        stream.finish()
    except MosaikError:
        pass
