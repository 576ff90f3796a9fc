"""A sans-I/O schedule of ticket expiries for the streams and groups shells.

The shell admits a peer (a subscription, a bond) after ``validate_all`` and schedules the
returned expiry under a key of its choosing. It sleeps until ``next_deadline()``, then asks
``due(now)`` which keys lapsed: streams drop those subscriptions, groups re-validate the bond
and schedule the new expiry if it still passes. The timer reads no clock and starts no task.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

from node.tickets.validation import At, Expiry

K = TypeVar("K", bound=Hashable)


class ExpiryTimer(Generic[K]):
    """Deadlines per key; rescheduling a key replaces its deadline."""

    __slots__ = ("_deadlines", "_heap", "_sequence")

    def __init__(self) -> None:
        self._deadlines: dict[K, tuple[float, int]] = {}
        # Entries outlive cancellation; a popped entry whose (deadline, sequence) no longer
        # matches the key's current one is stale and skipped.
        self._heap: list[tuple[float, int, K]] = []
        self._sequence = 0

    def schedule(self, key: K, expiry: Expiry) -> None:
        """Lapse ``key`` at ``expiry``; ``Never()`` only cancels a previous deadline."""
        if not isinstance(expiry, At):
            self._deadlines.pop(key, None)
            return
        self._sequence += 1
        self._deadlines[key] = (expiry.timestamp, self._sequence)
        heapq.heappush(self._heap, (expiry.timestamp, self._sequence, key))
        if len(self._heap) > 2 * len(self._deadlines) + 64:
            self._compact()

    def cancel(self, key: K) -> None:
        """Forget ``key`` (the subscription ended for another reason)."""
        self._deadlines.pop(key, None)

    def next_deadline(self) -> float | None:
        """When the shell must call ``due`` next; ``None`` if nothing is scheduled."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[K]:
        """Keys whose deadline is ``<= now``, earliest first; they are unscheduled."""
        lapsed: list[K] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return lapsed
            _, _, key = heapq.heappop(self._heap)
            del self._deadlines[key]
            lapsed.append(key)

    def deadline_of(self, key: K) -> float | None:
        entry = self._deadlines.get(key)
        return entry[0] if entry is not None else None

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, key: object) -> bool:
        return key in self._deadlines

    def _compact(self) -> None:
        # Rescheduling leaves stale entries behind; rebuild so memory tracks live keys.
        self._heap = [(d, s, k) for k, (d, s) in self._deadlines.items()]
        heapq.heapify(self._heap)

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap:
            deadline, sequence, key = heap[0]
            if self._deadlines.get(key) == (deadline, sequence):
                return
            heapq.heappop(heap)
