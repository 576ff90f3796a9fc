"""The wire codec: a u32 big-endian length prefix followed by a msgspec msgpack body.

``Digest`` and ``PeerId`` travel as 32 raw bytes. Decoding is typed: a body that does not
match the expected type raises ``DecodeError`` naming the type and msgspec's reason.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, Generic, TypeVar, overload

import msgspec

from node.errors import DecodeError, FrameTooLarge
from node.primitives.digest import Digest
from node.primitives.keys import PeerId

T = TypeVar("T")

LENGTH_PREFIX = struct.Struct(">I")
DEFAULT_MAX_FRAME = 4 * 1024 * 1024

_BYTES_TYPES: dict[type, type] = {Digest: Digest, PeerId: PeerId}


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Digest | PeerId):
        return obj.bytes
    raise TypeError(f"cannot encode objects of type {type(obj).__name__}")


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ in _BYTES_TYPES:
        if not isinstance(obj, bytes):
            raise msgspec.ValidationError(f"expected 32 bytes, got {type(obj).__name__}")
        try:
            return typ(obj)
        except ValueError as exc:
            raise msgspec.ValidationError(str(exc)) from None
    raise NotImplementedError(f"cannot decode {typ!r}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)


def encode(obj: Any) -> bytes:
    """The msgpack body of ``obj`` (no length prefix)."""
    return _encoder.encode(obj)


def encode_frame(obj: Any, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    body = _encoder.encode(obj)
    if len(body) > max_frame:
        raise FrameTooLarge(len(body), max_frame)
    return LENGTH_PREFIX.pack(len(body)) + body


def frame_bytes(body: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Frame an already-encoded body (used when one encoding is sent to many peers)."""
    if len(body) > max_frame:
        raise FrameTooLarge(len(body), max_frame)
    return LENGTH_PREFIX.pack(len(body)) + body


class Decoder(Generic[T]):
    """Typed decoding of msgpack bodies into ``T``."""

    __slots__ = ("_decoder", "_name")

    @overload
    def __init__(self: Decoder[T], typ: type[T]) -> None: ...
    @overload
    def __init__(self: Decoder[Any], typ: Any) -> None: ...
    def __init__(self, typ: Any) -> None:
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(typ, dec_hook=_dec_hook)
        self._name = getattr(typ, "__name__", repr(typ))

    def decode(self, body: bytes) -> T:
        try:
            return self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise DecodeError(f"invalid {self._name} message: {exc}") from None
        except UnicodeDecodeError:
            raise DecodeError(f"invalid {self._name} message: a string is not UTF-8") from None


def decode(typ: type[T], body: bytes) -> T:
    return Decoder(typ).decode(body)


class FrameBuffer:
    """Reassembles length-prefixed frames from a byte stream.

    A declared length above ``max_frame`` raises ``FrameTooLarge`` before the body is buffered,
    so a hostile peer cannot make us hold more than one maximum frame.
    """

    __slots__ = ("_buf", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buf += data
        buf = self._buf
        pos = 0
        try:
            while len(buf) - pos >= 4:
                (size,) = LENGTH_PREFIX.unpack_from(buf, pos)
                if size > self.max_frame:
                    raise FrameTooLarge(size, self.max_frame)
                end = pos + 4 + size
                if len(buf) < end:
                    break
                yield bytes(buf[pos + 4 : end])
                pos = end
        finally:
            del buf[:pos]

    @property
    def pending(self) -> int:
        return len(self._buf)
