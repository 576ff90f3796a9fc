"""The local node's own entry: changed only through typed change records, each a new version."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from node.discovery.entry import MAX_ENTRY_SIZE, PROTOCOL_VERSION, PeerEntry, SignedPeerEntry
from node.discovery.errors import InvalidEntry
from node.primitives.digest import Digest, NetworkId
from node.primitives.keys import SecretKey
from node.primitives.ticket import Ticket


@dataclass(frozen=True, slots=True)
class AddTags:
    tags: frozenset[Digest]


@dataclass(frozen=True, slots=True)
class RemoveTags:
    tags: frozenset[Digest]


@dataclass(frozen=True, slots=True)
class AddStreams:
    streams: frozenset[Digest]


@dataclass(frozen=True, slots=True)
class RemoveStreams:
    streams: frozenset[Digest]


@dataclass(frozen=True, slots=True)
class AddGroups:
    groups: frozenset[Digest]


@dataclass(frozen=True, slots=True)
class RemoveGroups:
    groups: frozenset[Digest]


@dataclass(frozen=True, slots=True)
class AddTicket:
    """Add a ticket, or replace the one with the same id (same class and data)."""

    ticket: Ticket


@dataclass(frozen=True, slots=True)
class RemoveTicket:
    ticket_id: Digest


@dataclass(frozen=True, slots=True)
class SetAddrs:
    addrs: tuple[str, ...]


LocalChange: TypeAlias = (
    AddTags
    | RemoveTags
    | AddStreams
    | RemoveStreams
    | AddGroups
    | RemoveGroups
    | AddTicket
    | RemoveTicket
    | SetAddrs
)


class LocalEntry:
    """Builds, versions and signs the local entry.

    Every effective change sets ``update_ms = max(last update_ms, now) + 1`` and re-signs, so
    versions strictly increase even if the wall clock steps back; a change that changes nothing
    keeps the version. A change that would make the entry invalid or too large raises
    ``InvalidEntry`` and leaves the entry as it was.
    """

    __slots__ = ("_key", "_max_size", "_signed")

    def __init__(
        self,
        secret_key: SecretKey,
        network_id: NetworkId,
        now_ms: int,
        *,
        addrs: Iterable[str] = (),
        max_size: int = MAX_ENTRY_SIZE,
    ) -> None:
        self._key = secret_key
        self._max_size = max_size
        entry = self._validated(
            protocol=PROTOCOL_VERSION,
            network_id=network_id,
            peer_id=secret_key.peer_id,
            start_ms=now_ms,
            update_ms=now_ms,
            addrs=tuple(addrs),
        )
        self._signed = SignedPeerEntry.sign(entry, secret_key, max_size=max_size)

    @property
    def entry(self) -> PeerEntry:
        return self._signed.entry

    @property
    def signed(self) -> SignedPeerEntry:
        return self._signed

    def apply(self, change: LocalChange, now_ms: int) -> bool:
        """Apply ``change``; True if the entry changed (and so has a new, signed version)."""
        entry = self._signed.entry
        fields: dict[str, object]
        match change:
            case AddTags(tags):
                fields = {"tags": entry.tags | tags}
            case RemoveTags(tags):
                fields = {"tags": entry.tags - tags}
            case AddStreams(streams):
                fields = {"streams": entry.streams | streams}
            case RemoveStreams(streams):
                fields = {"streams": entry.streams - streams}
            case AddGroups(groups):
                fields = {"groups": entry.groups | groups}
            case RemoveGroups(groups):
                fields = {"groups": entry.groups - groups}
            case AddTicket(ticket):
                others = {t.id(): t for t in entry.tickets if t.id() != ticket.id()}
                others[ticket.id()] = ticket
                fields = {"tickets": tuple(others[i] for i in sorted(others))}
            case RemoveTicket(ticket_id):
                fields = {"tickets": tuple(t for t in entry.tickets if t.id() != ticket_id)}
            case SetAddrs(addrs):
                fields = {"addrs": tuple(dict.fromkeys(addrs))}
        if all(getattr(entry, name) == value for name, value in fields.items()):
            return False
        self._bump(now_ms, fields)
        return True

    def refresh(self, now_ms: int) -> SignedPeerEntry:
        """Re-sign with a new version and unchanged content: a re-announce that renews the TTL."""
        self._bump(now_ms, {})
        return self._signed

    def _bump(self, now_ms: int, fields: dict[str, object]) -> None:
        entry = self._signed.entry
        update_ms = max(entry.update_ms, now_ms) + 1
        new = self._validated(**{**_fields_of(entry), **fields, "update_ms": update_ms})
        self._signed = SignedPeerEntry.sign(new, self._key, max_size=self._max_size)

    @staticmethod
    def _validated(**fields: object) -> PeerEntry:
        try:
            return PeerEntry(**fields)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InvalidEntry(str(exc)) from None


def _fields_of(entry: PeerEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__struct_fields__}
