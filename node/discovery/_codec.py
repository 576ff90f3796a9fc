"""Typed decoding that never lets a foreign exception out.

``node.primitives.Decoder`` turns msgspec's errors into ``DecodeError``, but two escape it:
msgspec raises ``UnicodeDecodeError`` for a string that is not UTF-8, and the codec's hook for
``Digest``/``PeerId`` fields raises ``NotImplementedError`` when such a field holds something
other than bytes (e.g. nil). Remote input must never raise anything but ``DecodeError`` here,
so this wrapper maps both.
"""

from __future__ import annotations

from typing import TypeVar

from node.errors import DecodeError
from node.primitives import Decoder

T = TypeVar("T")


def decode_strict(decoder: Decoder[T], body: bytes, what: str) -> T:
    try:
        return decoder.decode(body)
    except UnicodeDecodeError:
        raise DecodeError(f"invalid {what} message: a string is not UTF-8") from None
    except NotImplementedError:
        raise DecodeError(f"invalid {what} message: an id field is not bytes") from None
