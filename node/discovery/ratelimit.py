"""Per-peer token buckets: how often a peer may make this node do expensive work.

Each peer's bucket holds up to ``burst`` tokens and gains one every ``refill_ms``; a request
takes one, and a request that finds the bucket empty is refused with the time until the next
token. A bucket is kept as the one number that defines it, the time it is full again
(``full_at``, as in GCRA): a full bucket needs no record, so only peers that asked within the
last ``burst * refill_ms`` are remembered. Time comes from the caller (sans I/O).
"""

from __future__ import annotations

from node.primitives.keys import PeerId


class TokenBuckets:
    __slots__ = ("_burst", "_full_at", "_refill_ms")

    def __init__(self, burst: int, refill_ms: int) -> None:
        """``burst`` and ``refill_ms`` are positive (``DiscoveryConfig`` checks them)."""
        self._burst = burst
        self._refill_ms = refill_ms
        self._full_at: dict[PeerId, int] = {}

    def __len__(self) -> int:
        """Peers whose bucket is not full (remembered)."""
        return len(self._full_at)

    def take(self, peer: PeerId, now_ms: int) -> int | None:
        """Take a token from ``peer``'s bucket: None if there was one, else the ms until
        there is (the request is refused and takes nothing)."""
        self._forget_full(now_ms)
        # Clamped so that a wall clock stepping back empties a bucket at worst, never
        # locks the peer out for the length of the step.
        full_at = min(self._full_at.get(peer, now_ms), now_ms + self._burst * self._refill_ms)
        # ``full_at - now_ms`` is the time to refill the tokens missing; one token must be left.
        wait = full_at - now_ms - (self._burst - 1) * self._refill_ms
        if wait > 0:
            self._full_at[peer] = full_at  # keeps the clamp: the bucket refills from now on
            return wait
        self._full_at[peer] = full_at + self._refill_ms
        return None

    def _forget_full(self, now_ms: int) -> None:
        full = [peer for peer, full_at in self._full_at.items() if full_at <= now_ms]
        for peer in full:
            del self._full_at[peer]
