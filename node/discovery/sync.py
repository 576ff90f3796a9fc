"""Bookkeeping of catalog syncs (anti-entropy), the message exchange itself is in the core.

A sync is initiated by the dialling side of every new connection and by ``sync_with``: the
initiator sends SyncRequest chunks with all its fresh entries; the acceptor merges them and,
on the last chunk, answers with the entries the initiator did not send. An unanswered sync is
retried with a new nonce up to ``sync_attempts`` times while the peer stays connected; one the
acceptor refuses as too frequent (``SyncBusy``, see the core) ends at once, without a retry.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from node.discovery.config import DiscoveryConfig
from node.primitives.keys import PeerId

MAX_RECEIVING = 64
"""Acceptor sessions whose request is still arriving in chunks (oldest dropped first)."""


@dataclass(slots=True)
class _Session:
    nonce: int
    deadline_ms: int
    attempt: int
    accepted: int = 0


class Syncs:
    __slots__ = ("_config", "_initiated", "_receiving", "_rng", "wanted")

    def __init__(self, config: DiscoveryConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._initiated: dict[PeerId, _Session] = {}
        self._receiving: dict[tuple[PeerId, int], set[bytes]] = {}
        self.wanted: dict[PeerId, None] = {}
        """Peers ``sync_with`` asked for that are not connected yet."""

    def __contains__(self, peer: object) -> bool:
        """Whether a sync this node initiated with ``peer`` is in flight."""
        return peer in self._initiated

    def peers(self) -> list[PeerId]:
        return list(self._initiated)

    def deadlines(self) -> list[int]:
        return [session.deadline_ms for session in self._initiated.values()]

    # ------------------------------------------------------------------ initiator

    def start(self, peer: PeerId, now_ms: int, attempt: int) -> int:
        """Open a session with ``peer``; its nonce."""
        nonce = self._rng.getrandbits(63)
        deadline = now_ms + self._config.sync_timeout_ms
        self._initiated[peer] = _Session(nonce, deadline, attempt)
        return nonce

    def answered(self, peer: PeerId, nonce: int, accepted: int, last: bool) -> int | None:
        """Count a response chunk; the session's total of new entries once it is complete."""
        session = self._initiated.get(peer)
        if session is None or session.nonce != nonce:
            return None
        session.accepted += accepted
        if not last:
            return None
        del self._initiated[peer]
        return session.accepted

    def refused(self, peer: PeerId, nonce: int) -> bool:
        """The acceptor refused session ``nonce``: end it; False if it is not in flight."""
        session = self._initiated.get(peer)
        if session is None or session.nonce != nonce:
            return False
        del self._initiated[peer]
        return True

    def expired(self, now_ms: int) -> list[tuple[PeerId, int]]:
        """Sessions past their deadline, as (peer, attempt), removed."""
        expired = [
            (peer, session.attempt)
            for peer, session in self._initiated.items()
            if session.deadline_ms <= now_ms
        ]
        for peer, _ in expired:
            del self._initiated[peer]
        return expired

    def drop(self, peer: PeerId) -> bool:
        return self._initiated.pop(peer, None) is not None

    def clear(self) -> list[PeerId]:
        """End everything (shutdown); the peers whose syncs were in flight or wanted."""
        peers = [*self._initiated, *self.wanted]
        self._initiated.clear()
        self.wanted.clear()
        return peers

    # ------------------------------------------------------------------ acceptor

    def receive(
        self, peer: PeerId, nonce: int, entries: Sequence[bytes], last: bool
    ) -> set[bytes] | None:
        """Collect a request chunk; on the last one, every entry the initiator sent."""
        key = (peer, nonce)
        received = self._receiving.pop(key, set())
        received.update(entries)
        if last:
            return received
        self._receiving[key] = received
        while len(self._receiving) > MAX_RECEIVING:
            del self._receiving[next(iter(self._receiving))]
        return None
