"""Graceful departure: a node's signed word that it is leaving.

It names the last entry version the node announced, so it removes exactly that incarnation: an
entry with a newer version (the node came back) wins over it. The signature covers the network
id too, so a departure cannot be replayed into another network.
"""

from __future__ import annotations

from functools import lru_cache

import blake3
import msgspec

from node.discovery.entry import SIGNATURE_SIZE, Version
from node.discovery.errors import InvalidDeparture
from node.errors import DecodeError
from node.primitives.codec import Decoder, encode
from node.primitives.digest import Digest
from node.primitives.keys import PeerId, SecretKey

MAX_DEPARTURE_SIZE = 512
_DEPARTURE_CONTEXT = "mosaik-py discovery graceful departure v1"


class _DepartureBody(msgspec.Struct, array_like=True, frozen=True):
    network_id: Digest
    peer_id: PeerId
    start_ms: int
    update_ms: int
    timestamp_ms: int


class _DepartureWire(msgspec.Struct, array_like=True, frozen=True):
    body: _DepartureBody
    signature: bytes


_decoder: Decoder[_DepartureWire] = Decoder(_DepartureWire)
_TOKEN = object()


def _signing_digest(body: _DepartureBody) -> bytes:
    return blake3.blake3(encode(body), derive_key_context=_DEPARTURE_CONTEXT).digest()


class GracefulDeparture:
    """A verified departure notice: (network, peer, last version, timestamp) and its signature.

    Built only by ``sign`` or ``decode`` (which verifies). Equality follows the encoded bytes.
    """

    __slots__ = ("_body", "_encoded", "_signature")

    def __init__(self, body: _DepartureBody, signature: bytes, token: object) -> None:
        if token is not _TOKEN:
            raise TypeError("a GracefulDeparture is made by GracefulDeparture.sign() or .decode()")
        self._body = body
        self._signature = signature
        self._encoded = encode(_DepartureWire(body=body, signature=signature))

    @classmethod
    def sign(
        cls, secret_key: SecretKey, network_id: Digest, version: Version, timestamp_ms: int
    ) -> GracefulDeparture:
        body = _DepartureBody(
            network_id=network_id,
            peer_id=secret_key.peer_id,
            start_ms=version[0],
            update_ms=version[1],
            timestamp_ms=timestamp_ms,
        )
        return cls(body, secret_key.sign(_signing_digest(body)), _TOKEN)

    @classmethod
    def decode(cls, data: bytes) -> GracefulDeparture:
        """Decode and verify; raises ``InvalidDeparture`` naming the failed check."""
        if len(data) > MAX_DEPARTURE_SIZE:
            raise InvalidDeparture(
                f"notice of {len(data)} bytes exceeds the maximum of {MAX_DEPARTURE_SIZE} bytes"
            )
        return _decode_verified(bytes(data))

    def encode(self) -> bytes:
        return self._encoded

    @property
    def network_id(self) -> Digest:
        return self._body.network_id

    @property
    def peer_id(self) -> PeerId:
        return self._body.peer_id

    @property
    def version(self) -> Version:
        return (self._body.start_ms, self._body.update_ms)

    @property
    def timestamp_ms(self) -> int:
        return self._body.timestamp_ms

    @property
    def signature(self) -> bytes:
        return self._signature

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GracefulDeparture) and other._encoded == self._encoded

    def __hash__(self) -> int:
        return hash(self._encoded)

    def __repr__(self) -> str:
        return f"GracefulDeparture(peer={self.peer_id.short()}, version={self.version})"


@lru_cache(maxsize=1024)
def _decode_verified(data: bytes) -> GracefulDeparture:
    try:
        wire = _decoder.decode(data)
    except DecodeError as exc:
        raise InvalidDeparture(f"malformed notice ({exc})") from None
    body = wire.body
    if len(wire.signature) != SIGNATURE_SIZE:
        raise InvalidDeparture(
            f"signature is {len(wire.signature)} bytes, expected {SIGNATURE_SIZE}"
        )
    if min(body.start_ms, body.update_ms, body.timestamp_ms) < 0:
        raise InvalidDeparture("negative version or timestamp")
    if not body.peer_id.verify(wire.signature, _signing_digest(body)):
        raise InvalidDeparture(
            f"signature does not verify for peer {body.peer_id.short()} "
            "(notice or signature altered, or signed by another key)"
        )
    departure = GracefulDeparture(body, wire.signature, _TOKEN)
    if departure.encode() != data:
        raise InvalidDeparture(f"notice of peer {body.peer_id.short()} is not canonically encoded")
    return departure
