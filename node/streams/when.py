"""Awaiting channel conditions: ``when.online()``, ``when.subscribed(minimum_of=2)``, ...

``online()`` and ``offline()`` are level-triggered: they return at once if the state already
holds. ``subscribed(...)`` and ``unsubscribed(...)`` return a ``ChannelCondition`` that is
edge-triggered and re-arms: the first ``await`` returns as soon as the condition is met (at
once if it already is); each later ``await`` of the same object returns on the next unmet ->
met edge. Edges are recorded as they happen, so one that occurs between two ``await``s is not
lost.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Generator, Iterable
from typing import Any

from node.discovery import PeerInfo
from node.primitives import Tag
from node.streams.conditions import Condition, PeerPredicate, as_tags


class Signal:
    """A broadcast wake-up: every task waiting when ``notify`` runs is woken."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class ChannelCondition:
    """An awaitable, re-arming condition over the connected channels."""

    __slots__ = ("__weakref__", "_condition", "_consumed", "_edges", "_inverse", "_last", "_when")

    def __init__(self, when: When, condition: Condition, *, inverse: bool) -> None:
        self._when = when
        self._condition = condition
        self._inverse = inverse
        self._last = False
        self._edges = 0
        self._consumed = 0
        self._observe()

    def is_met(self) -> bool:
        return self._condition.is_met(self._when._peers()) != self._inverse

    def _observe(self) -> None:
        met = self.is_met()
        if met and not self._last:
            self._edges += 1
        self._last = met

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        while self._edges == self._consumed:
            await self._when._signal.wait()
        self._consumed = self._edges

    def __repr__(self) -> str:
        kind = "unsubscribed" if self._inverse else "subscribed"
        return f"ChannelCondition({kind}, minimum={self._condition.minimum}, met={self.is_met()})"


class When:
    """Conditions of one producer or consumer over its connected channels."""

    __slots__ = ("_conditions", "_online", "_peers", "_signal")

    def __init__(self, peers: Callable[[], Iterable[PeerInfo]], online_when: Condition) -> None:
        self._peers = peers
        self._online = online_when
        self._signal = Signal()
        self._conditions: weakref.WeakSet[ChannelCondition] = weakref.WeakSet()

    @property
    def is_online(self) -> bool:
        return self._online.is_met(self._peers())

    async def online(self) -> None:
        """Return once the ``online_when`` condition holds."""
        while not self.is_online:
            await self._signal.wait()

    async def offline(self) -> None:
        """Return once the ``online_when`` condition does not hold."""
        while self.is_online:
            await self._signal.wait()

    def subscribed(
        self,
        *,
        minimum_of: int = 1,
        tags: Iterable[str | Tag] | str | Tag = (),
        predicate: PeerPredicate | None = None,
    ) -> ChannelCondition:
        """Met while at least ``minimum_of`` connected peers carry ``tags`` and pass
        ``predicate``."""
        return self._track(_condition(minimum_of, tags, predicate), inverse=False)

    def unsubscribed(
        self,
        *,
        minimum_of: int = 1,
        tags: Iterable[str | Tag] | str | Tag = (),
        predicate: PeerPredicate | None = None,
    ) -> ChannelCondition:
        """Met while ``subscribed`` with the same arguments is not (by default: no peer)."""
        return self._track(_condition(minimum_of, tags, predicate), inverse=True)

    def _track(self, condition: Condition, *, inverse: bool) -> ChannelCondition:
        tracked = ChannelCondition(self, condition, inverse=inverse)
        self._conditions.add(tracked)
        return tracked

    def changed(self) -> None:
        """The channel set or a channel's peer changed: record edges, wake waiters."""
        for tracked in list(self._conditions):
            tracked._observe()
        self._signal.notify()


def _condition(
    minimum_of: int, tags: Iterable[str | Tag] | str | Tag, predicate: PeerPredicate | None
) -> Condition:
    condition = Condition(minimum=minimum_of, tags=as_tags(tags))
    return condition if predicate is None else condition.with_predicate(predicate)
