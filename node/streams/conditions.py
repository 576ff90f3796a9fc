"""Conditions over a set of channels: "at least n peers with these tags that pass this test".

Producers become online (``online_when``) and ``when.subscribed`` resolves when such a
condition holds over the channels that are connected right now. A condition is an immutable
value built by chaining: ``minimum_of(2).with_tags("eu").with_predicate(lambda p: ...)``.
Tags are given as names (hashed like every ``Tag``) or as digests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from node.discovery.entry import PeerInfo
from node.errors import ConfigError
from node.primitives.digest import Digest, Tag

PeerPredicate = Callable[[PeerInfo], bool]


def as_tags(tags: Iterable[str | Tag] | str | Tag) -> frozenset[Tag]:
    """Tag names or digests as a set of digests; a single name is one tag, not its letters."""
    if isinstance(tags, str | Digest):
        tags = (tags,)
    return frozenset(Digest.from_name(tag) for tag in tags)


@dataclass(frozen=True, slots=True)
class Condition:
    """Met when at least ``minimum`` peers carry every tag in ``tags`` and pass every
    predicate in ``predicates``."""

    minimum: int = 1
    tags: frozenset[Tag] = frozenset()
    predicates: tuple[PeerPredicate, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.minimum, int) or self.minimum < 0:
            raise ConfigError(f"minimum_of: expected a count >= 0, got {self.minimum!r}")

    def minimum_of(self, n: int) -> Condition:
        return replace(self, minimum=n)

    def with_tags(self, *tags: str | Tag) -> Condition:
        return replace(self, tags=self.tags | as_tags(tags))

    def with_predicate(self, predicate: PeerPredicate) -> Condition:
        if not callable(predicate):
            raise ConfigError(f"with_predicate: expected a callable, got {predicate!r}")
        return replace(self, predicates=(*self.predicates, predicate))

    def matches(self, peer: PeerInfo) -> bool:
        return self.tags <= peer.tags and all(test(peer) for test in self.predicates)

    def is_met(self, peers: Iterable[PeerInfo]) -> bool:
        if self.minimum == 0:
            return True
        count = 0
        for peer in peers:
            if self.matches(peer):
                count += 1
                if count >= self.minimum:
                    return True
        return False


def minimum_of(n: int) -> Condition:
    """At least ``n`` connected peers."""
    return Condition(minimum=n)


def with_tags(*tags: str | Tag) -> Condition:
    """At least one connected peer carrying every one of ``tags``."""
    return Condition().with_tags(*tags)


def with_predicate(predicate: PeerPredicate) -> Condition:
    """At least one connected peer for which ``predicate(peer_info)`` is true."""
    return Condition().with_predicate(predicate)
