"""Intent-addressed identifiers: 32-byte blake3 digests of human-readable names."""

from __future__ import annotations

import builtins
from typing import TypeAlias

import blake3

from node.errors import ConfigError

DIGEST_SIZE = 32


class Digest:
    """A 32-byte blake3 digest.

    ``Digest.from_name("orders")`` hashes the UTF-8 name; 64 hex characters are decoded as-is,
    so a printed id pasted back yields the same id. Ordering and hashing follow the bytes.
    On the wire (msgspec) a digest is 32 raw bytes.
    """

    __slots__ = ("_bytes",)

    def __init__(self, data: bytes) -> None:
        if len(data) != DIGEST_SIZE:
            raise ValueError(f"a digest is {DIGEST_SIZE} bytes, got {len(data)}")
        self._bytes = bytes(data)

    @classmethod
    def hash(cls, data: bytes) -> Digest:
        return cls(blake3.blake3(data).digest())

    @classmethod
    def from_name(cls, name: str | bytes | Digest) -> Digest:
        if isinstance(name, Digest):
            return cls(name._bytes)
        if isinstance(name, bytes):
            return cls.hash(name)
        if len(name) == 2 * DIGEST_SIZE:
            try:
                return cls(bytes.fromhex(name))
            except ValueError:
                pass
        return cls.hash(name.encode())

    @classmethod
    def from_hex(cls, text: str) -> Digest:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ConfigError(f"not a hex digest: {text!r}") from None
        if len(raw) != DIGEST_SIZE:
            raise ConfigError(f"a hex digest has {2 * DIGEST_SIZE} characters, got {len(text)}")
        return cls(raw)

    def derive(self, info: str | bytes | Digest) -> Digest:
        """blake3(self || info): a child id bound to this one."""
        if isinstance(info, Digest):
            info = info._bytes
        elif isinstance(info, str):
            info = info.encode()
        return Digest.hash(self._bytes + info)

    def hashed(self) -> Digest:
        return Digest.hash(self._bytes)

    @property
    def bytes(self) -> bytes:
        return self._bytes

    def hex(self) -> str:
        return self._bytes.hex()

    def short(self) -> str:
        return self._bytes[:5].hex()

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"Digest({self.short()}…)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Digest) and other._bytes == self._bytes

    def __lt__(self, other: Digest) -> bool:
        return self._bytes < other._bytes

    def __le__(self, other: Digest) -> bool:
        return self._bytes <= other._bytes

    def __gt__(self, other: Digest) -> bool:
        return self._bytes > other._bytes

    def __ge__(self, other: Digest) -> bool:
        return self._bytes >= other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __bytes__(self) -> builtins.bytes:
        return self._bytes


NetworkId: TypeAlias = Digest
StreamId: TypeAlias = Digest
GroupId: TypeAlias = Digest
StoreId: TypeAlias = Digest
Tag: TypeAlias = Digest
UniqueId: TypeAlias = Digest
