"""mosaik-py: a runtime for self-organizing, leaderless distributed systems.

Only the primitives and the root errors load eagerly: ``Network`` and the transport's names
resolve on first use (``node._lazy``), so importing a sans-I/O core does not start asyncio.
"""

import typing

from node._lazy import lazy as _lazy
from node._version import __version__
from node.errors import CodecError, ConfigError, DecodeError, MosaikError
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

if typing.TYPE_CHECKING:
    from node.network import Network
    from node.transport.addr import PeerAddr, SocketAddr
    from node.transport.errors import (
        ConnectError,
        ConnectionClosed,
        DifferentNetwork,
        PeerMismatch,
        TransportError,
    )
else:
    __getattr__, __dir__ = _lazy(
        __name__,
        {
            "node.network": ("Network",),
            "node.transport.addr": ("PeerAddr", "SocketAddr"),
            "node.transport.errors": (
                "ConnectError",
                "ConnectionClosed",
                "DifferentNetwork",
                "PeerMismatch",
                "TransportError",
            ),
        },
    )

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
