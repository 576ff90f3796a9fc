"""Identifiers, keys and the wire codec."""

from node.primitives.codec import (
    DEFAULT_MAX_FRAME,
    Decoder,
    FrameBuffer,
    decode,
    encode,
    encode_frame,
    frame_bytes,
)
from node.primitives.digest import (
    Digest,
    GroupId,
    NetworkId,
    StoreId,
    StreamId,
    Tag,
    UniqueId,
)
from node.primitives.keys import PeerId, SecretKey
from node.primitives.ticket import Ticket

__all__ = [
    "DEFAULT_MAX_FRAME",
    "Decoder",
    "Digest",
    "FrameBuffer",
    "GroupId",
    "NetworkId",
    "PeerId",
    "SecretKey",
    "StoreId",
    "StreamId",
    "Tag",
    "Ticket",
    "UniqueId",
    "decode",
    "encode",
    "encode_frame",
    "frame_bytes",
]
