from __future__ import annotations

import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import DecodeError, FrameTooLarge
from node.primitives import Decoder, FrameBuffer, PeerId, SecretKey, encode, encode_frame


class Entry(msgspec.Struct):
    peer: PeerId
    seq: int
    tags: list[str]


def test_frame_layout_is_u32_be_length_then_msgpack() -> None:
    frame = encode_frame({"a": 1})
    (size,) = struct.unpack(">I", frame[:4])
    assert size == len(frame) - 4
    assert msgspec.msgpack.decode(frame[4:]) == {"a": 1}


def test_typed_decode_round_trip() -> None:
    entry = Entry(SecretKey.generate().peer_id, 7, ["x"])
    assert Decoder(Entry).decode(encode(entry)) == entry


def test_decode_error_names_type_and_field() -> None:
    with pytest.raises(DecodeError, match=r"invalid Entry message: .*seq"):
        Decoder(Entry).decode(encode({"peer": b"\x00" * 32, "seq": "seven", "tags": []}))
    with pytest.raises(DecodeError, match="32 bytes"):
        Decoder(Entry).decode(encode({"peer": b"\x00" * 5, "seq": 1, "tags": []}))
    with pytest.raises(DecodeError, match="invalid Entry"):
        Decoder(Entry).decode(b"\xc1garbage")


def test_frame_too_large_on_encode_and_on_receive() -> None:
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * 100, max_frame=10)
    buffer = FrameBuffer(max_frame=10)
    with pytest.raises(FrameTooLarge, match="exceeds the maximum of 10"):
        list(buffer.feed(struct.pack(">I", 11)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 50))
def test_frame_buffer_reassembles_any_split(bodies: list[bytes], chunk: int) -> None:
    stream = b"".join(encode_frame(body) for body in bodies)
    buffer = FrameBuffer()
    out: list[bytes] = []
    for i in range(0, len(stream), chunk):
        out.extend(buffer.feed(stream[i : i + chunk]))
    assert [msgspec.msgpack.decode(body) for body in out] == bodies
    assert buffer.pending == 0


def test_only_decode_error_escapes_for_wrong_id_types_and_bad_utf8() -> None:
    with pytest.raises(DecodeError, match="expected 32 bytes, got NoneType"):
        Decoder(Entry).decode(encode({"peer": None, "seq": 1, "tags": []}))
    bad_utf8 = b"\x83\xa4peer\xc4\x20" + b"\x00" * 32 + b"\xa3seq\x01\xa4tags\x91\xa2\xff\xfe"
    with pytest.raises(DecodeError):
        Decoder(Entry).decode(bad_utf8)
