"""Why a group stopped on this node, and when its runtime tries again.

A group stops when its driver fails: the storage refused a write (a full disk is the common
case), or the state machine or the runtime itself raised. The process keeps running; the
group shows as stopped (``/status``, ``/healthz``, metrics) and its runtime retries after an
exponential backoff, re-opening its storage from disk, until the cause is gone.

``reason`` is a short, bounded label (a metric label value); ``error`` is the message.
"""

from __future__ import annotations

import errno
import random
import sqlite3
from dataclasses import dataclass
from typing import Final, Literal

from node.groups.raft import CorruptStorage, StorageError

Reason = Literal["storage_full", "storage_corrupt", "storage_error", "internal"]
REASONS: Final[tuple[Reason, ...]] = (
    "storage_full",
    "storage_corrupt",
    "storage_error",
    "internal",
)

RETRY_FIRST: Final = 0.5
"""Seconds before the first retry; each failed retry doubles it."""
RETRY_CAP: Final = 30.0
"""The longest pause between two retries."""

_FULL_MARKERS = ("database or disk is full", "no space left on device", "disk quota exceeded")


def classify(exc: BaseException) -> Reason:
    """The bounded label of what stopped a group."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "storage_full"
    if isinstance(exc, StorageError | sqlite3.Error | OSError):
        text = str(exc).lower()
        if any(marker in text for marker in _FULL_MARKERS):
            return "storage_full"
        return "storage_corrupt" if isinstance(exc, CorruptStorage) else "storage_error"
    return "internal"


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry ``attempt`` (0 for the first): doubling from
    ``RETRY_FIRST`` up to ``RETRY_CAP``, less up to a fifth at random so that the groups of a
    node (and the nodes of one full disk array) do not retry in step."""
    delay = min(RETRY_CAP, RETRY_FIRST * 2.0 ** min(attempt, 16))
    return delay * (1 - 0.2 * rng.random())


@dataclass(frozen=True, slots=True)
class Stopped:
    """A group that stopped on this node: why, since when (wall clock), how often the runtime
    retried since, and when it tries next (monotonic clock)."""

    reason: Reason
    error: str
    since: float
    retries: int = 0
    next_retry: float = 0.0

    def describe(self, now: float) -> dict[str, object]:
        """The ``stopped`` field of the group's status (``now`` on the monotonic clock)."""
        return {
            "reason": self.reason,
            "error": self.error,
            "since": self.since,
            "retries": self.retries,
            "next_retry_in": round(max(0.0, self.next_retry - now), 3),
        }
