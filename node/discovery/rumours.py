"""Rumour bookkeeping for the gossip rounds: what to push next, and what to pull.

A rumour is one entry version (or departure) that this node has just accepted. The catalog is
the seen-cache: only an accepted, newer version becomes a rumour, so each is forwarded once.
Rumours wait here until the next round (at most one round per gossip interval), newest version
per peer only. Rumours announced to us by IHave wait in ``missing`` until the eager copy arrives
or the graft timeout passes, when they are pulled from the announcers in turn.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from node.discovery.messages import RumourId
from node.primitives.keys import PeerId

MAX_MISSING = 16_384
"""Bound on rumours announced but not yet received (a flood of IHave cannot grow memory)."""
PULL_ATTEMPTS = 8
"""Pulls of one rumour (a lost IWant or answer is retried, from the next announcer)."""


@dataclass(frozen=True, slots=True)
class Rumour:
    id: RumourId
    data: bytes
    """The signed entry or departure notice, encoded."""
    source: PeerId | None
    """The neighbour it came from (None: local); it is not sent back there."""


@dataclass(slots=True)
class _Missing:
    announcers: list[PeerId]
    attempts: int = 0


class Rumours:
    __slots__ = (
        "_first_pending_ms",
        "_graft_heap",
        "_interval_ms",
        "_last_round_ms",
        "_missing",
        "_pending",
        "_seq",
    )

    def __init__(self, interval_ms: int) -> None:
        self._interval_ms = interval_ms
        self._pending: dict[tuple[PeerId, bool], Rumour] = {}
        self._first_pending_ms = 0
        self._last_round_ms: int | None = None
        self._missing: dict[RumourId, _Missing] = {}
        self._graft_heap: list[tuple[int, int, RumourId]] = []
        self._seq = 0

    # ------------------------------------------------------------------ push

    def push(self, rumour: Rumour, now_ms: int) -> None:
        """Queue ``rumour`` for the next round, superseding an older one of the same peer."""
        if not self._pending:
            self._first_pending_ms = now_ms
        key = (rumour.id.peer_id, rumour.id.departed)
        queued = self._pending.get(key)
        if queued is None or queued.id.version < rumour.id.version:
            self._pending[key] = rumour

    def round_at(self) -> int | None:
        """When the next round is due: now if none ran within the last interval."""
        if not self._pending:
            return None
        if self._last_round_ms is None:
            return self._first_pending_ms
        return max(self._first_pending_ms, self._last_round_ms + self._interval_ms)

    def take_round(self, now_ms: int) -> list[Rumour]:
        rumours = list(self._pending.values())
        self._pending.clear()
        self._last_round_ms = now_ms
        return rumours

    def clear(self) -> None:
        self._pending.clear()

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ pull

    def announced(self, rumour_id: RumourId, by: PeerId, due_ms: int) -> None:
        """``by`` has ``rumour_id``; pull it from there at ``due_ms`` unless it arrives."""
        missing = self._missing.get(rumour_id)
        if missing is None:
            if len(self._missing) >= MAX_MISSING:
                return
            self._missing[rumour_id] = _Missing([by])
            self._seq += 1
            heapq.heappush(self._graft_heap, (due_ms, self._seq, rumour_id))
        elif by not in missing.announcers:
            missing.announcers.append(by)

    def next_graft(self) -> int | None:
        while self._graft_heap:
            due, _, rumour_id = self._graft_heap[0]
            if rumour_id in self._missing:
                return due
            heapq.heappop(self._graft_heap)
        return None

    def grafts_due(self, now_ms: int) -> list[RumourId]:
        """Rumours still missing whose pull is due now."""
        due: list[RumourId] = []
        while self._graft_heap and self._graft_heap[0][0] <= now_ms:
            _, _, rumour_id = heapq.heappop(self._graft_heap)
            if rumour_id in self._missing:
                due.append(rumour_id)
        return due

    def next_announcer(
        self, rumour_id: RumourId, reachable: Callable[[PeerId], bool]
    ) -> PeerId | None:
        """The announcer to pull ``rumour_id`` from now, taking reachable announcers in turn;
        None (and the rumour is forgotten) when none is reachable or all attempts are used."""
        missing = self._missing.get(rumour_id)
        if missing is None:
            return None
        candidates = [peer for peer in missing.announcers if reachable(peer)]
        if not candidates or missing.attempts >= PULL_ATTEMPTS:
            del self._missing[rumour_id]
            return None
        missing.attempts += 1
        return candidates[(missing.attempts - 1) % len(candidates)]

    def retry_later(self, rumour_id: RumourId, due_ms: int) -> None:
        self._seq += 1
        heapq.heappush(self._graft_heap, (due_ms, self._seq, rumour_id))

    def resolved(self, rumour_id: RumourId) -> None:
        self._missing.pop(rumour_id, None)

    @property
    def missing(self) -> int:
        return len(self._missing)
