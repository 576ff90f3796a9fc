"""Wire messages of the discovery protocol (ALPN ``/mosaik/discovery/1``), a tagged union.

Entries and departure notices travel as their own signed encodings (``bytes``) inside these
messages: each is verified on its own, so one bad item is dropped without losing the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, TypeAlias

import msgspec

from node.discovery.entry import SignedPeerEntry
from node.discovery.errors import InvalidEntry
from node.primitives.codec import Decoder
from node.primitives.keys import PeerId

_U63 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class RumourId(msgspec.Struct, array_like=True, frozen=True):
    """Names one rumour: an entry version of a peer, or that version's departure."""

    peer_id: PeerId
    start_ms: _U63
    update_ms: _U63
    departed: bool

    @property
    def version(self) -> tuple[int, int]:
        return (self.start_ms, self.update_ms)


class Gossip(msgspec.Struct, tag="gossip", frozen=True):
    """Eager push: new entries and departure notices, each forwarded once per node."""

    entries: tuple[bytes, ...] = ()
    departures: tuple[bytes, ...] = ()


class IHave(msgspec.Struct, tag="ihave", frozen=True):
    """Lazy push: the rumours this node forwarded eagerly to others this round."""

    rumours: tuple[RumourId, ...]


class IWant(msgspec.Struct, tag="iwant", frozen=True):
    """Pull: rumours announced by IHave that did not arrive eagerly in time."""

    rumours: tuple[RumourId, ...]


class SyncRequest(msgspec.Struct, tag="sync_request", frozen=True):
    """Anti-entropy, initiator side: all its fresh signed entries, in chunks."""

    nonce: _U63
    entries: tuple[bytes, ...]
    last: bool


class SyncResponse(msgspec.Struct, tag="sync_response", frozen=True):
    """Anti-entropy, acceptor side: its entries the initiator did not send, in chunks."""

    nonce: _U63
    entries: tuple[bytes, ...]
    last: bool


class SyncBusy(msgspec.Struct, tag="sync_busy", frozen=True):
    """Anti-entropy, acceptor side: the request ``nonce`` is refused, its sender asked for
    syncs more often than this node answers them; the next is answered after
    ``retry_after_ms``. Instead of ``SyncResponse``: a small reply to a request that would
    otherwise cost a whole catalog, so the initiator ends its sync at once."""

    nonce: _U63
    retry_after_ms: _U63


class Ping(msgspec.Struct, tag="ping", frozen=True):
    nonce: _U63


class Pong(msgspec.Struct, tag="pong", frozen=True):
    """Answer to ``Ping``, carrying the responder's current signed entry."""

    nonce: _U63
    entry: bytes


DiscoveryMessage: TypeAlias = (
    Gossip | IHave | IWant | SyncRequest | SyncResponse | SyncBusy | Ping | Pong
)

message_decoder: Decoder[DiscoveryMessage] = Decoder(DiscoveryMessage)
"""Decodes one frame body; raises ``node.errors.DecodeError`` naming what is wrong."""


def sender_start_ms(sender: PeerId, message: DiscoveryMessage) -> int | None:
    """The start time (incarnation) ``sender`` proves about itself in ``message``, if any.

    The first chunk of a sync, either way, leads with the sender's own entry, and a ``Pong``
    carries it; a node never holds its own entry in its catalog, so an entry signed by the
    sender that comes from the sender is always its current one.
    """
    match message:
        case SyncRequest(entries=entries) | SyncResponse(entries=entries) if entries:
            data = entries[0]
        case Pong(entry=data):
            pass
        case _:
            return None
    try:
        signed = SignedPeerEntry.decode(data)
    except InvalidEntry:
        return None
    return signed.entry.start_ms if signed.peer_id == sender else None


def chunked(items: Sequence[bytes], budget: int) -> Iterator[tuple[bytes, ...]]:
    """Split encoded items into groups whose total size stays within ``budget`` bytes (a
    single item larger than the budget travels alone)."""
    chunk: list[bytes] = []
    size = 0
    for item in items:
        cost = len(item) + 8  # msgpack bin header and array slack
        if chunk and size + cost > budget:
            yield tuple(chunk)
            chunk, size = [], 0
        chunk.append(item)
        size += cost
    if chunk:
        yield tuple(chunk)
