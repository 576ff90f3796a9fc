"""Pings of neighbours: when each is due, and the RTT sample an answer yields.

Each neighbour is pinged when its link comes up and then every ``ping_interval`` (+/- jitter),
one ping in flight at a time. A ping unanswered within the peer's RTO (RFC 6298; 1 s before
any sample) counts as a timeout, which backs its RTO off.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from node.discovery.config import DiscoveryConfig
from node.discovery.neighbours import Link, jittered
from node.primitives.keys import PeerId


@dataclass(slots=True)
class _Ping:
    nonce: int
    sent_ms: int
    deadline_ms: int


class Pings:
    __slots__ = ("_config", "_pending", "_rng")

    def __init__(self, config: DiscoveryConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._pending: dict[PeerId, _Ping] = {}

    def deadlines(self, links: Mapping[PeerId, Link]) -> Iterator[int]:
        for peer, link in links.items():
            ping = self._pending.get(peer)
            yield link.next_ping_ms if ping is None else ping.deadline_ms

    def due(
        self, now_ms: int, links: Mapping[PeerId, Link], rto_ms: Callable[[PeerId], float]
    ) -> tuple[list[tuple[PeerId, int]], list[PeerId]]:
        """(pings to send now as (peer, nonce), peers whose ping timed out)."""
        send: list[tuple[PeerId, int]] = []
        timed_out: list[PeerId] = []
        for peer, link in links.items():
            ping = self._pending.get(peer)
            if ping is not None and ping.deadline_ms <= now_ms:
                timed_out.append(peer)
                del self._pending[peer]
                ping = None
            if ping is None and link.next_ping_ms <= now_ms:
                nonce = self._rng.getrandbits(63)
                self._pending[peer] = _Ping(nonce, now_ms, now_ms + round(rto_ms(peer)))
                link.next_ping_ms = now_ms + jittered(
                    self._rng, self._config.ping_interval_ms, self._config.ping_jitter
                )
                send.append((peer, nonce))
        return send, timed_out

    def answered(self, peer: PeerId, nonce: int, now_ms: int) -> int | None:
        """The RTT sample (ms) if this answers the ping in flight to ``peer``."""
        ping = self._pending.get(peer)
        if ping is None or ping.nonce != nonce:
            return None
        del self._pending[peer]
        return now_ms - ping.sent_ms if now_ms >= ping.sent_ms else None

    def forget(self, peer: PeerId) -> None:
        self._pending.pop(peer, None)
