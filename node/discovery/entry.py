"""Peer entries: what a node says about itself, signed with its own key.

A ``PeerEntry`` is the plain record. Its canonical encoding (sets sorted, tickets sorted by id,
fixed field order) is what gets signed: ed25519 over blake3 of that encoding, in blake3's
key-derivation mode with a context string so the signature cannot be replayed as any other
signed message of the node. A ``SignedPeerEntry`` exists only through ``sign`` (local) or
``decode`` (remote), and ``decode`` checks size, shape, signature and canonical form, so holding
a ``SignedPeerEntry`` means holding an entry its peer really signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Annotated, TypeAlias

import blake3
import msgspec

from node.discovery.errors import InvalidEntry
from node.errors import DecodeError
from node.primitives.codec import Decoder, encode
from node.primitives.digest import Digest
from node.primitives.keys import PeerId, SecretKey
from node.primitives.ticket import Ticket

PROTOCOL_VERSION = 1
MAX_ENTRY_SIZE = 128 * 1024
"""Largest encoded signed entry accepted (room for a few attestation tickets with collateral)."""
MAX_ADDRS = 16
MAX_ADDR_LENGTH = 256
SIGNATURE_SIZE = 64

Version: TypeAlias = tuple[int, int]
"""(start_ms, update_ms): a restart raises start_ms, every change raises update_ms."""

_ENTRY_CONTEXT = "mosaik-py discovery peer entry v1"
_NonNegative = Annotated[int, msgspec.Meta(ge=0)]


def _check_addr(addr: str) -> None:
    if not addr or len(addr) > MAX_ADDR_LENGTH:
        raise ValueError(f"address {addr[:40]!r} must be 1 to {MAX_ADDR_LENGTH} characters")
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {addr!r} is not host:port")


class PeerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What a peer announces: identity, version, addresses and what it offers.

    ``tickets`` is sorted by ticket id with no duplicates, so equal entries encode equally.
    """

    protocol: int
    network_id: Digest
    peer_id: PeerId
    start_ms: int
    update_ms: int
    addrs: tuple[str, ...] = ()
    tags: frozenset[Digest] = frozenset()
    streams: frozenset[Digest] = frozenset()
    groups: frozenset[Digest] = frozenset()
    tickets: tuple[Ticket, ...] = ()

    def __post_init__(self) -> None:
        if self.protocol < 0 or self.start_ms < 0:
            raise ValueError("protocol and start_ms must not be negative")
        if self.update_ms < self.start_ms:
            raise ValueError(f"update_ms {self.update_ms} is before start_ms {self.start_ms}")
        if len(self.addrs) > MAX_ADDRS:
            raise ValueError(f"{len(self.addrs)} addresses, at most {MAX_ADDRS} allowed")
        if len(set(self.addrs)) != len(self.addrs):
            raise ValueError("addrs contains duplicates")
        for addr in self.addrs:
            _check_addr(addr)
        ids = [ticket.id() for ticket in self.tickets]
        if any(a >= b for a, b in pairwise(ids)):
            raise ValueError("tickets must be sorted by ticket id without duplicates")

    @property
    def version(self) -> Version:
        return (self.start_ms, self.update_ms)

    def ticket(self, ticket_id: Digest) -> Ticket | None:
        for ticket in self.tickets:
            if ticket.id() == ticket_id:
                return ticket
        return None

    def same_content(self, other: PeerEntry) -> bool:
        """Equal in everything but ``update_ms``: a re-announce, not a change."""
        return (
            self.protocol == other.protocol
            and self.network_id == other.network_id
            and self.peer_id == other.peer_id
            and self.start_ms == other.start_ms
            and self.addrs == other.addrs
            and self.tags == other.tags
            and self.streams == other.streams
            and self.groups == other.groups
            and self.tickets == other.tickets
        )


class _EntryWire(msgspec.Struct, array_like=True, frozen=True):
    """The canonical encoding of a ``PeerEntry``: fixed field order, sorted collections."""

    protocol: _NonNegative
    network_id: Digest
    peer_id: PeerId
    start_ms: _NonNegative
    update_ms: _NonNegative
    addrs: tuple[str, ...]
    tags: tuple[Digest, ...]
    streams: tuple[Digest, ...]
    groups: tuple[Digest, ...]
    tickets: tuple[Ticket, ...]


class _SignedWire(msgspec.Struct, array_like=True, frozen=True):
    entry: bytes
    signature: bytes


_entry_decoder: Decoder[_EntryWire] = Decoder(_EntryWire)
_signed_decoder: Decoder[_SignedWire] = Decoder(_SignedWire)
_TOKEN = object()


def encode_entry(entry: PeerEntry) -> bytes:
    """The canonical bytes of ``entry``: what its signature covers."""
    return encode(
        _EntryWire(
            protocol=entry.protocol,
            network_id=entry.network_id,
            peer_id=entry.peer_id,
            start_ms=entry.start_ms,
            update_ms=entry.update_ms,
            addrs=entry.addrs,
            tags=tuple(sorted(entry.tags)),
            streams=tuple(sorted(entry.streams)),
            groups=tuple(sorted(entry.groups)),
            tickets=entry.tickets,
        )
    )


def _signing_digest(encoded_entry: bytes) -> bytes:
    return blake3.blake3(encoded_entry, derive_key_context=_ENTRY_CONTEXT).digest()


class SignedPeerEntry:
    """A ``PeerEntry`` with its peer's signature, verified.

    Built only by ``sign`` (with the entry's own secret key) or ``decode`` (which verifies), so
    an unsigned or tampered entry can never be held as one. Immutable; equality and hashing
    follow the encoded bytes.
    """

    __slots__ = ("_encoded", "_entry", "_signature")

    def __init__(self, entry: PeerEntry, signature: bytes, encoded: bytes, token: object) -> None:
        if token is not _TOKEN:
            raise TypeError("a SignedPeerEntry is made by SignedPeerEntry.sign() or .decode()")
        self._entry = entry
        self._signature = signature
        self._encoded = encoded

    @classmethod
    def sign(
        cls, entry: PeerEntry, secret_key: SecretKey, *, max_size: int = MAX_ENTRY_SIZE
    ) -> SignedPeerEntry:
        if secret_key.peer_id != entry.peer_id:
            raise InvalidEntry(
                f"entry of peer {entry.peer_id.short()} cannot be signed by the key of "
                f"peer {secret_key.peer_id.short()}"
            )
        body = encode_entry(entry)
        signature = secret_key.sign(_signing_digest(body))
        encoded = encode(_SignedWire(entry=body, signature=signature))
        if len(encoded) > max_size:
            raise InvalidEntry(
                f"signed entry of {len(encoded)} bytes exceeds the maximum of {max_size} bytes"
            )
        return cls(entry, signature, encoded, _TOKEN)

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = MAX_ENTRY_SIZE) -> SignedPeerEntry:
        """Decode and verify; raises ``InvalidEntry`` naming the failed check."""
        if len(data) > max_size:
            raise InvalidEntry(
                f"signed entry of {len(data)} bytes exceeds the maximum of {max_size} bytes"
            )
        return _decode_verified(bytes(data))

    def encode(self) -> bytes:
        return self._encoded

    @property
    def entry(self) -> PeerEntry:
        return self._entry

    @property
    def signature(self) -> bytes:
        return self._signature

    @property
    def peer_id(self) -> PeerId:
        return self._entry.peer_id

    @property
    def version(self) -> Version:
        return self._entry.version

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SignedPeerEntry) and other._encoded == self._encoded

    def __hash__(self) -> int:
        return hash(self._encoded)

    def __repr__(self) -> str:
        return f"SignedPeerEntry(peer={self.peer_id.short()}, version={self.version})"


# Verification is a pure function of the bytes; the same entry usually arrives over several
# paths (eager push, pull, sync) within seconds, so recent results are memoized.
@lru_cache(maxsize=8192)
def _decode_verified(data: bytes) -> SignedPeerEntry:
    try:
        wire = _signed_decoder.decode(data)
    except DecodeError as exc:
        raise InvalidEntry(f"malformed signed entry ({exc})") from None
    if len(wire.signature) != SIGNATURE_SIZE:
        raise InvalidEntry(f"signature is {len(wire.signature)} bytes, expected {SIGNATURE_SIZE}")
    try:
        fields = _entry_decoder.decode(wire.entry)
    except DecodeError as exc:
        raise InvalidEntry(f"malformed entry body ({exc})") from None
    if not fields.peer_id.verify(wire.signature, _signing_digest(wire.entry)):
        raise InvalidEntry(
            f"signature does not verify for peer {fields.peer_id.short()} "
            "(entry or signature altered, or signed by another key)"
        )
    try:
        entry = PeerEntry(
            protocol=fields.protocol,
            network_id=fields.network_id,
            peer_id=fields.peer_id,
            start_ms=fields.start_ms,
            update_ms=fields.update_ms,
            addrs=fields.addrs,
            tags=frozenset(fields.tags),
            streams=frozenset(fields.streams),
            groups=frozenset(fields.groups),
            tickets=fields.tickets,
        )
    except ValueError as exc:
        raise InvalidEntry(f"entry of peer {fields.peer_id.short()}: {exc}") from None
    if encode_entry(entry) != wire.entry:
        raise InvalidEntry(f"entry of peer {fields.peer_id.short()} is not canonically encoded")
    return SignedPeerEntry(entry, wire.signature, data, _TOKEN)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A catalog peer as predicates see it: its entry and smoothed round-trip time, if measured."""

    entry: PeerEntry
    rtt_ms: float | None = None

    @property
    def peer_id(self) -> PeerId:
        return self.entry.peer_id

    @property
    def tags(self) -> frozenset[Digest]:
        return self.entry.tags

    @property
    def streams(self) -> frozenset[Digest]:
        return self.entry.streams

    @property
    def groups(self) -> frozenset[Digest]:
        return self.entry.groups

    @property
    def tickets(self) -> tuple[Ticket, ...]:
        return self.entry.tickets
