"""The producer's fan-out buffer: one bounded ring of encoded datums, a cursor per subscriber.

Each datum is encoded once and appended once; every subscriber reads it through its own
cursor, so memory is bounded by ``capacity`` datums whatever the number of subscribers (plus
the batch each writer has in hand). The ring is full when the slowest subscriber is
``capacity`` datums behind. Who is to blame then is decided here (sans I/O):

- a subscriber that holds the oldest datum and whose writer has been *stalled* for at least
  ``grace`` seconds (its transport accepted nothing: the consumer or its path stopped keeping
  up) is *lagging*: the shell applies the producer's policy (disconnect it, or drop its
  oldest datums);
- otherwise the sender waits: for writers that are merely behind in this event-loop turn, or
  for a stalled one until its grace runs out. A consumer that is slower than the producer
  but still reading makes its writer progress, which ends the stall: it paces the producer
  instead of being cut off.

So a consumer that stops reading never holds the producer back for longer than ``grace``,
and a burst from a fast producer never disconnects consumers that are keeping up. Time is
passed in (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class FanoutRing(Generic[K]):
    """Encoded datums between ``tail`` (oldest still needed) and ``head`` (next sequence)."""

    __slots__ = ("_base", "_cursors", "_items", "_stalled", "_tail", "capacity", "head")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be at least 1")
        self.capacity = capacity
        self.head = 0
        self._base = 0
        self._items: list[bytes] = []
        self._cursors: dict[K, int] = {}
        self._stalled: dict[K, float] = {}
        # The slowest cursor, recomputed only after a cursor moved (None: stale).
        self._tail: int | None = None

    # -- subscribers ----------------------------------------------------------------------

    def add(self, key: K) -> None:
        """A new subscriber: it receives datums pushed from now on."""
        self._cursors[key] = self.head
        self._tail = None

    def remove(self, key: K) -> None:
        self._cursors.pop(key, None)
        self._stalled.pop(key, None)
        self._tail = None
        self._trim()

    def __contains__(self, key: object) -> bool:
        return key in self._cursors

    def __len__(self) -> int:
        return len(self._cursors)

    def set_stalled(self, key: K, since: float | None) -> None:
        """The shell marks a subscriber whose writer waits on its transport since ``since``
        (None: it is writing again)."""
        if since is not None and key in self._cursors:
            self._stalled.setdefault(key, since)
        else:
            self._stalled.pop(key, None)

    def is_stalled(self, key: K) -> bool:
        return key in self._stalled

    # -- datums ---------------------------------------------------------------------------

    @property
    def tail(self) -> int:
        """The oldest datum some subscriber still needs (``head`` if none)."""
        if self._tail is None:
            self._tail = min(self._cursors.values(), default=None)
        return self.head if self._tail is None else self._tail

    def room(self) -> int:
        """Datums that can be pushed before the slowest subscriber is ``capacity`` behind."""
        return self.capacity - (self.head - self.tail)

    def push(self, body: bytes) -> None:
        """Append one encoded datum; the caller checked ``room()`` and that there is a
        subscriber to read it."""
        if self.room() <= 0:
            raise OverflowError("fan-out ring is full")
        self._items.append(body)
        self.head += 1

    def pending(self, key: K) -> int:
        return self.head - self._cursors[key]

    def take(self, key: K) -> list[bytes]:
        """Everything ``key`` has not read yet, oldest first; its cursor moves to ``head``."""
        start = self._cursors[key]
        if start == self.head:
            return []
        batch = self._items[start - self._base :]
        self._cursors[key] = self.head
        self._tail = None
        self._trim()
        return batch

    def _stalled_holders(self) -> list[tuple[K, float]]:
        if self.room() > 0:
            return []
        tail = self.tail
        stalled = self._stalled
        return [(k, stalled[k]) for k, c in self._cursors.items() if c == tail and k in stalled]

    def lagging(self, now: float, grace: float) -> list[K]:
        """Subscribers holding the oldest datum of a full ring, stalled for ``grace`` seconds
        or more by ``now``, in insertion order."""
        return [k for k, since in self._stalled_holders() if now - since >= grace]

    def next_lag_deadline(self, grace: float) -> float | None:
        """When the first stalled holder of a full ring becomes lagging, if any."""
        return min((since + grace for _, since in self._stalled_holders()), default=None)

    def drop_oldest(self, key: K, count: int) -> int:
        """Skip up to ``count`` of ``key``'s oldest unread datums; returns how many."""
        cursor = self._cursors[key]
        skipped = min(count, self.head - cursor)
        self._cursors[key] = cursor + skipped
        self._tail = None
        self._trim()
        return skipped

    def _trim(self) -> None:
        # Release datums every subscriber has read; amortized so a trim moves at least
        # ``capacity`` items' worth of work, never one per datum.
        tail = self.tail
        if tail - self._base >= self.capacity or (tail == self.head and self._items):
            del self._items[: tail - self._base]
            self._base = tail
