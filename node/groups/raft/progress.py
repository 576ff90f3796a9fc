"""The leader's view of each follower: match/next index, flow control, liveness.

A follower is probed (one append in flight until it answers) until an append succeeds, then
replicated to optimistically with up to ``max_inflight`` appends in flight (pipelining), or
sent a snapshot when the entries it needs were compacted.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    __slots__ = (
        "inflight",
        "is_learner",
        "match",
        "max_inflight",
        "next",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "sent_commit",
        "snapshot_elapsed",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int, *, is_learner: bool) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight: deque[int] = deque()  # last index of each append in flight
        self.max_inflight = max_inflight
        self.pending_snapshot = 0
        self.snapshot_elapsed = 0
        self.recent_active = False
        self.sent_commit = 0
        self.is_learner = is_learner

    def become_probe(self) -> None:
        # After a snapshot that was delivered, probing resumes right after it.
        self.next = max(self.match, self.pending_snapshot) + 1
        self._reset(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next = self.match + 1
        self._reset(ProgressState.REPLICATE)

    def become_snapshot(self, index: int) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = index

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_elapsed = 0
        self.inflight.clear()

    def maybe_update(self, index: int) -> bool:
        """An acknowledgement that the follower matches up to ``index``; False if stale."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        return updated

    def maybe_decrease_to(self, rejected: int, hint: int) -> bool:
        """A rejection of an append after ``rejected``; False if it is stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= self.max_inflight
        return True

    def sent(self, last_index: int, n_entries: int, commit: int) -> None:
        """Account for an append ending at ``last_index`` that carried ``commit``."""
        self.sent_commit = max(self.sent_commit, commit)
        if self.state is ProgressState.REPLICATE:
            if n_entries:
                self.next = last_index + 1
                self.inflight.append(last_index)
        else:
            self.probe_sent = True

    def can_bump_commit(self, commit: int) -> bool:
        """Whether an empty append could advance the follower's commit index."""
        return commit > self.sent_commit and self.sent_commit < self.next - 1

    def free_one_inflight(self) -> None:
        if self.inflight:
            self.inflight.popleft()
