"""The leader's queue of ReadIndex requests awaiting confirmation of its leadership.

Each request records the commit index at arrival and gets a sequence number that the next
heartbeats carry as their context. A follower answering a heartbeat with sequence ``s``
acknowledges, after every request up to ``s`` arrived, that this node still leads; a request
is confirmed once a quorum of voters (the leader included) acknowledged its sequence
(thesis 6.4).
"""

from __future__ import annotations

from collections import deque

from node.primitives.keys import PeerId

_SEQ_BYTES = 8


class PendingRead:
    __slots__ = ("context", "index", "origin", "seq")

    def __init__(self, seq: int, index: int, context: bytes, origin: PeerId) -> None:
        self.seq = seq
        self.index = index
        self.context = context
        self.origin = origin


class ReadQueue:
    __slots__ = ("_acked", "_queue", "_seq")

    def __init__(self) -> None:
        self._queue: deque[PendingRead] = deque()
        self._acked: dict[PeerId, int] = {}
        self._seq = 0

    def add(self, index: int, context: bytes, origin: PeerId) -> bytes:
        """Queue a read at commit ``index``; returns the heartbeat context that confirms it."""
        self._seq += 1
        self._queue.append(PendingRead(self._seq, index, context, origin))
        return self.heartbeat_context()

    def heartbeat_context(self) -> bytes:
        """The context for the next heartbeat: the newest pending request, if any."""
        return self._queue[-1].seq.to_bytes(_SEQ_BYTES, "big") if self._queue else b""

    def acknowledge(
        self, peer: PeerId, context: bytes, voters: tuple[PeerId, ...], leader: PeerId
    ) -> list[PendingRead]:
        """Record ``peer``'s answer; return the requests this confirms, oldest first."""
        if len(context) != _SEQ_BYTES or not self._queue:
            return []
        seq = int.from_bytes(context, "big")
        if seq > self._acked.get(peer, 0):
            self._acked[peer] = seq
        return self.release(voters, leader)

    def release(self, voters: tuple[PeerId, ...], leader: PeerId) -> list[PendingRead]:
        """The requests a quorum of ``voters`` confirmed (all of them if the leader is alone)."""
        if not self._queue or not voters:
            return []
        acked = sorted(
            (self._seq if v == leader else self._acked.get(v, 0) for v in voters), reverse=True
        )
        confirmed = acked[len(voters) // 2]
        released: list[PendingRead] = []
        while self._queue and self._queue[0].seq <= confirmed:
            released.append(self._queue.popleft())
        return released
