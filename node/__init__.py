"""mosaik-py: a runtime for self-organizing, leaderless distributed systems."""

from node._version import __version__
from node.errors import (
    CodecError,
    ConfigError,
    ConnectError,
    ConnectionClosed,
    DecodeError,
    DifferentNetwork,
    MosaikError,
    PeerMismatch,
    TransportError,
)
from node.network import Network
from node.primitives import (
    Digest,
    GroupId,
    NetworkId,
    PeerId,
    SecretKey,
    StoreId,
    StreamId,
    Tag,
    Ticket,
)
from node.transport import PeerAddr, SocketAddr

__all__ = [
    "CodecError",
    "ConfigError",
    "ConnectError",
    "ConnectionClosed",
    "DecodeError",
    "DifferentNetwork",
    "Digest",
    "GroupId",
    "MosaikError",
    "Network",
    "NetworkId",
    "PeerAddr",
    "PeerId",
    "PeerMismatch",
    "SecretKey",
    "SocketAddr",
    "StoreId",
    "StreamId",
    "Tag",
    "Ticket",
    "TransportError",
    "__version__",
]
