"""Calls waiting on the log: commands awaiting their entry's application, forwarded commands
awaiting the leader's answer, strong reads awaiting their read index.

A command is identified by the (index, term) its leader appended it at: by Raft's log
matching property the entry applied at that index is the command exactly when its term is
that term. Any other term there means the command was overwritten by a later leader, so it
was never committed and may be proposed again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from node.groups.errors import Offline

_RECENT = 4096
"""Results kept for commands whose waiter registers after they applied."""


class Executed(msgspec.Struct, frozen=True):
    """A command applied by the group: its log ``index`` and what ``apply`` returned."""

    index: int
    result: Any = None


class Overwritten(Exception):
    """Internal: the entry at the awaited index has another term; propose the command again."""


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a leader appended a batch: ``index`` of the first command, in ``term``."""

    index: int
    term: int


class Pending:
    """The futures of one group runtime; resolved from its driver loop."""

    def __init__(self) -> None:
        self._applied: dict[int, list[tuple[int, asyncio.Future[Executed]]]] = {}
        self._recent: OrderedDict[int, tuple[int, Any]] = OrderedDict()
        self._forwards: dict[int, asyncio.Future[Assignment]] = {}
        self._next_request = 0
        self._reads: dict[bytes, asyncio.Future[int]] = {}
        self._parked: list[tuple[int, asyncio.Future[int]]] = []
        self._next_read = 0

    # -- applied commands ---------------------------------------------------------------------

    def wait_applied(self, index: int, term: int, applied: int) -> asyncio.Future[Executed]:
        future: asyncio.Future[Executed] = asyncio.get_running_loop().create_future()
        if index <= applied:
            recent = self._recent.get(index)
            if recent is None:
                future.set_exception(
                    Offline(f"the outcome of entry {index} is unknown", maybe_applied=True)
                )
            elif recent[0] == term:
                future.set_result(Executed(index, recent[1]))
            else:
                future.set_exception(Overwritten())
            return future
        self._applied.setdefault(index, []).append((term, future))
        return future

    def applied(self, index: int, term: int, result: Any) -> None:
        self._recent[index] = (term, result)
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        for expected, future in self._applied.pop(index, ()):
            if future.done():
                continue
            if expected == term:
                future.set_result(Executed(index, result))
                continue
            future.set_exception(Overwritten())
            # The leader of ``expected`` appended its entries in order and never removed any:
            # if its entry here lost, so did every later one of that term.
            for later, waiters in self._applied.items():
                if later > index:
                    for t, f in waiters:
                        if t == expected and not f.done():
                            f.set_exception(Overwritten())

    def skipped_to(self, index: int) -> None:
        """A snapshot up to ``index`` replaced the log: those entries are not applied here."""
        for waiting in [i for i in self._applied if i <= index]:
            for _, future in self._applied.pop(waiting):
                if not future.done():
                    future.set_exception(
                        Offline(
                            f"entry {waiting} arrived in a snapshot: its outcome is unknown here",
                            maybe_applied=True,
                        )
                    )
        self._recent.clear()

    # -- forwarded commands -------------------------------------------------------------------

    def forward(self) -> tuple[int, asyncio.Future[Assignment]]:
        self._next_request += 1
        future: asyncio.Future[Assignment] = asyncio.get_running_loop().create_future()
        self._forwards[self._next_request] = future
        return self._next_request, future

    def forward_done(self, request: int) -> None:
        self._forwards.pop(request, None)

    def leader_changed(self) -> None:
        """Forwards still unanswered went to a leader that is gone: their outcome is unknown
        (the old leader may have appended them), so the callers learn it now."""
        for future in self._forwards.values():
            if not future.done():
                future.set_exception(
                    Offline("the leader changed before answering", maybe_applied=True)
                )

    def forward_answered(self, request: int, result: Assignment | Exception) -> None:
        future = self._forwards.pop(request, None)
        if future is None or future.done():
            return
        if isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result)

    # -- strong reads -------------------------------------------------------------------------

    def read(self) -> tuple[bytes, asyncio.Future[int]]:
        self._next_read += 1
        context = self._next_read.to_bytes(8, "big")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads[context] = future
        return context, future

    def read_done(self, context: bytes) -> None:
        self._reads.pop(context, None)

    def read_confirmed(self, context: bytes, index: int, applied: int) -> None:
        future = self._reads.pop(context, None)
        if future is None or future.done():
            return
        if index <= applied:
            future.set_result(index)
        else:
            self._parked.append((index, future))

    def release_reads(self, applied: int) -> None:
        if not self._parked:
            return
        still: list[tuple[int, asyncio.Future[int]]] = []
        for index, future in self._parked:
            if future.done():
                continue
            if index <= applied:
                future.set_result(index)
            else:
                still.append((index, future))
        self._parked = still

    # -- the end ------------------------------------------------------------------------------

    def fail_all(self, error: Callable[[], Exception]) -> None:
        futures: list[asyncio.Future[Any]] = [f for lst in self._applied.values() for _, f in lst]
        futures += self._forwards.values()
        futures += self._reads.values()
        futures += [f for _, f in self._parked]
        for future in futures:
            if not future.done():
                future.set_exception(error())
        self._applied.clear()
        self._forwards.clear()
        self._reads.clear()
        self._parked.clear()
