"""Authenticated QUIC transport: one UDP socket per node, framed streams, close codes.

Addresses, close codes and errors load eagerly; the QUIC machinery (``Connection``,
``Endpoint``, ``FaultShim``) resolves on first use, so a core that needs only ``codes`` or an
address does not import asyncio or aioquic.
"""

import typing

from node._lazy import lazy as _lazy
from node.transport import codes
from node.transport.addr import PeerAddr, SocketAddr
from node.transport.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosed,
    DifferentNetwork,
    PeerMismatch,
    TransportError,
)

if typing.TYPE_CHECKING:
    from node.transport.connection import Connection, FramedStream
    from node.transport.endpoint import Endpoint, Handler, TransportConfig
    from node.transport.faults import FaultShim, FaultStats
else:
    __getattr__, __dir__ = _lazy(
        __name__,
        {
            "node.transport.connection": ("Connection", "FramedStream"),
            "node.transport.endpoint": ("Endpoint", "Handler", "TransportConfig"),
            "node.transport.faults": ("FaultShim", "FaultStats"),
        },
    )

__all__ = [
    "AuthenticationError",
    "Connection",
    "ConnectError",
    "ConnectionClosed",
    "DifferentNetwork",
    "Endpoint",
    "FaultShim",
    "FaultStats",
    "FramedStream",
    "Handler",
    "PeerAddr",
    "PeerMismatch",
    "SocketAddr",
    "TransportConfig",
    "TransportError",
    "codes",
]
