from __future__ import annotations

import msgspec
import pytest

from node.errors import ConfigError
from node.primitives import Digest, NetworkId, decode, encode

# Published blake3 test vectors (the reference implementation's README and test_vectors).
EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"


def test_known_blake3_vectors() -> None:
    assert Digest.from_name("").hex() == EMPTY
    assert Digest.from_name("abc").hex() == ABC
    assert Digest.hash(b"abc") == Digest.from_name("abc")


def test_sixty_four_hex_characters_decode_as_is() -> None:
    digest = Digest.from_name("orders")
    assert Digest.from_name(digest.hex()) == digest
    assert Digest.from_hex(digest.hex()) == digest
    # 64 characters that are not hex are a name like any other.
    not_hex = "z" * 64
    assert Digest.from_name(not_hex) == Digest.hash(not_hex.encode())


def test_derive_and_hashed_chain() -> None:
    root = Digest.from_name("root")
    assert root.derive("a") == Digest.hash(root.bytes + b"a")
    assert root.derive(b"a") == root.derive("a")
    x = Digest.from_name("x")
    assert root.derive(x) == Digest.hash(root.bytes + x.bytes)
    assert root.derive("a").derive("b") != root.derive("b").derive("a")
    assert root.hashed() == Digest.hash(root.bytes)


def test_display_ordering_hashing() -> None:
    a, b = Digest(b"\x00" * 32), Digest(b"\x01" + b"\x00" * 31)
    assert a < b and b > a and a <= a and sorted([b, a]) == [a, b]
    assert len({a, Digest(b"\x00" * 32)}) == 1
    assert str(a) == "00" * 32 and a.short() == "0000000000"
    assert bytes(a) == a.bytes


def test_msgspec_encoding_is_32_raw_bytes() -> None:
    class Holder(msgspec.Struct):
        network: NetworkId

    digest = Digest.from_name("net")
    body = encode(Holder(digest))
    assert digest.bytes in body and len(body) == 1 + 8 + 2 + 32  # map, key, bin header, bytes
    assert decode(Holder, body).network == digest


@pytest.mark.parametrize("bad", ["xyz", "ab" * 31, "ab" * 33])
def test_bad_hex_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="hex digest"):
        Digest.from_hex(bad)


def test_wrong_length_bytes_rejected() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Digest(b"short")
