"""Authenticated QUIC transport: one UDP socket per node, framed streams, close codes."""

from node.transport import codes
from node.transport.addr import PeerAddr, SocketAddr
from node.transport.connection import Connection, FramedStream
from node.transport.endpoint import Endpoint, Handler, TransportConfig
from node.transport.faults import FaultShim, FaultStats

__all__ = [
    "Connection",
    "Endpoint",
    "FaultShim",
    "FaultStats",
    "FramedStream",
    "Handler",
    "PeerAddr",
    "SocketAddr",
    "TransportConfig",
    "codes",
]
