"""The active view: the peers this node keeps discovery connections with (decisions only).

Rules:
- below ``target_neighbours`` (counting dials in flight) the node dials random known peers
  that have an address and are not backing off; with no neighbour left this is the rejoin,
  through the catalog and the bootstrap peers;
- above ``max_neighbours`` it drops random *settled* neighbours: a link settles once its first
  sync has been exchanged (or after ``sync_timeout``), so a joiner is never dropped before it
  has learnt the catalog; above twice the maximum (a join storm) unsettled links go too;
- a failed dial backs off that peer, doubling from ``dial_backoff`` up to its maximum;
- every ``shuffle_interval`` (+/- jitter) one random non-neighbour is dialled and, once
  connected, a random settled neighbour is dropped if the view is above its target: the
  overlay stays a random graph, and the two sides of a healed partition find each other.
The core turns these decisions into ``Dial`` and ``Disconnect`` outputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass

from node.discovery.config import DiscoveryConfig
from node.primitives.keys import PeerId


@dataclass(slots=True)
class Link:
    since_ms: int
    next_ping_ms: int
    settled: bool = False


@dataclass(slots=True)
class _Dialing:
    deadline_ms: int
    shuffle: bool


def jittered(rng: random.Random, interval_ms: int, jitter: float) -> int:
    return max(1, round(interval_ms * (1 + rng.uniform(-jitter, jitter))))


class Neighbours:
    __slots__ = (
        "_backoff",
        "_config",
        "_dialing",
        "_rng",
        "bootstrap",
        "links",
        "maintain_at",
        "shuffle_at",
    )

    def __init__(self, config: DiscoveryConfig, rng: random.Random, now_ms: int) -> None:
        self._config = config
        self._rng = rng
        self.links: dict[PeerId, Link] = {}
        self.bootstrap: dict[PeerId, tuple[str, ...]] = {}
        self._dialing: dict[PeerId, _Dialing] = {}
        self._backoff: dict[PeerId, tuple[int, int]] = {}
        self.maintain_at: int | None = now_ms
        self.shuffle_at = now_ms + jittered(rng, config.shuffle_interval_ms, config.shuffle_jitter)

    def __contains__(self, peer: object) -> bool:
        return peer in self.links

    def __len__(self) -> int:
        return len(self.links)

    @property
    def dialing(self) -> int:
        return len(self._dialing)

    def is_dialing(self, peer: PeerId) -> bool:
        return peer in self._dialing

    def deadlines(self) -> list[int]:
        deadlines = [self.shuffle_at, *(d.deadline_ms for d in self._dialing.values())]
        if self.maintain_at is not None:
            deadlines.append(self.maintain_at)
        return deadlines

    # ------------------------------------------------------------------ events

    def connected(self, peer: PeerId, now_ms: int) -> bool:
        """Record the link; True if it came from a shuffle dial."""
        dialing = self._dialing.pop(peer, None)
        self._backoff.pop(peer, None)
        if peer not in self.links:
            self.links[peer] = Link(since_ms=now_ms, next_ping_ms=now_ms)
        return dialing is not None and dialing.shuffle

    def disconnected(self, peer: PeerId, now_ms: int) -> None:
        self.links.pop(peer, None)
        self.request_maintenance(now_ms)

    def dial_started(self, peer: PeerId, now_ms: int, *, shuffle: bool) -> None:
        self._dialing[peer] = _Dialing(now_ms + self._config.dial_timeout_ms, shuffle)

    def dial_failed(self, peer: PeerId, now_ms: int) -> bool:
        """Back the peer off; False if no dial to it was in flight."""
        if self._dialing.pop(peer, None) is None:
            return False
        previous = self._backoff.get(peer)
        delay = (
            self._config.dial_backoff_ms
            if previous is None
            else min(2 * previous[1], self._config.max_dial_backoff_ms)
        )
        self._backoff[peer] = (now_ms + delay, delay)
        self.request_maintenance(now_ms)
        return True

    def expired_dials(self, now_ms: int) -> list[PeerId]:
        return [peer for peer, d in self._dialing.items() if d.deadline_ms <= now_ms]

    def settle(self, peer: PeerId) -> bool:
        """The link's first sync was exchanged; True if that is news."""
        link = self.links.get(peer)
        if link is None or link.settled:
            return False
        link.settled = True
        return True

    def request_maintenance(self, now_ms: int) -> None:
        if not self._config.target_neighbours <= len(self.links) <= self._config.max_neighbours:
            self.maintain_at = now_ms

    # ------------------------------------------------------------------ decisions

    def to_dial(
        self, now_ms: int, known: Iterable[PeerId], has_address: Callable[[PeerId], bool]
    ) -> list[PeerId]:
        """Maintenance: the peers to dial now to reach the target (marked as dialling)."""
        target = self._config.target_neighbours
        missing = target - len(self.links) - len(self._dialing)
        chosen: list[PeerId] = []
        if missing > 0:
            candidates = self._candidates(now_ms, known, has_address)
            chosen = self._rng.sample(candidates, min(missing, len(candidates)))
            for peer in chosen:
                self.dial_started(peer, now_ms, shuffle=False)
        below = len(self.links) < target
        self.maintain_at = now_ms + self._config.maintain_interval_ms if below else None
        return chosen

    def to_shuffle(
        self, now_ms: int, known: Iterable[PeerId], has_address: Callable[[PeerId], bool]
    ) -> PeerId | None:
        """The shuffle: one random non-neighbour to dial now (marked as dialling)."""
        self.shuffle_at = now_ms + jittered(
            self._rng, self._config.shuffle_interval_ms, self._config.shuffle_jitter
        )
        if not self.links:
            return None
        candidates = self._candidates(now_ms, known, has_address)
        if not candidates:
            return None
        peer = self._rng.choice(candidates)
        self.dial_started(peer, now_ms, shuffle=True)
        return peer

    def victims(
        self,
        now_ms: int,
        *,
        keep: PeerId | None,
        busy: Container[PeerId],
        shuffled: bool = False,
    ) -> list[PeerId]:
        """Neighbours to drop now (already removed from the view); ``busy`` ones are spared
        unless the view is twice over its maximum; after a shuffle one goes to make room."""
        limit = self._config.max_neighbours
        excess = len(self.links) - limit
        if shuffled:
            excess = max(excess, min(1, len(self.links) - self._config.target_neighbours))
        chosen: list[PeerId] = []
        if excess > 0:
            settle_ms = self._config.sync_timeout_ms
            settled = [
                peer
                for peer, link in self.links.items()
                if peer != keep
                and peer not in busy
                and (link.settled or link.since_ms + settle_ms <= now_ms)
            ]
            chosen = self._rng.sample(settled, min(excess, len(settled)))
        storm = len(self.links) - len(chosen) - 2 * limit
        if storm > 0:
            rest = [peer for peer in self.links if peer != keep and peer not in chosen]
            chosen += self._rng.sample(rest, storm)
        for peer in chosen:
            del self.links[peer]
        if len(self.links) > limit:
            self.maintain_at = now_ms + self._config.maintain_interval_ms
        return chosen

    def _candidates(
        self, now_ms: int, known: Iterable[PeerId], has_address: Callable[[PeerId], bool]
    ) -> list[PeerId]:
        peers = dict.fromkeys(known)
        peers.update(dict.fromkeys(self.bootstrap))
        return [
            peer
            for peer in peers
            if peer not in self.links
            and peer not in self._dialing
            and self._backoff.get(peer, (0, 0))[0] <= now_ms
            and has_address(peer)
        ]
