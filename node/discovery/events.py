"""Catalog events: what changed in the set of known peers, in the past tense."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from node.discovery.entry import PeerEntry
from node.primitives.keys import PeerId


class DepartureReason(enum.Enum):
    GRACEFUL = "graceful"
    """The peer signed a departure notice."""
    EXPIRED = "expired"
    """No fresh entry of the peer was seen within the catalog's TTL."""


@dataclass(frozen=True, slots=True)
class PeerDiscovered:
    entry: PeerEntry

    @property
    def peer_id(self) -> PeerId:
        return self.entry.peer_id


@dataclass(frozen=True, slots=True)
class PeerUpdated:
    """A newer entry changed what the peer offers (a bare re-announce is not an update)."""

    entry: PeerEntry
    previous: PeerEntry

    @property
    def peer_id(self) -> PeerId:
        return self.entry.peer_id


@dataclass(frozen=True, slots=True)
class PeerDeparted:
    entry: PeerEntry
    reason: DepartureReason

    @property
    def peer_id(self) -> PeerId:
        return self.entry.peer_id


CatalogEvent: TypeAlias = PeerDiscovered | PeerUpdated | PeerDeparted
