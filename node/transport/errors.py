"""The transport's exceptions.

    MosaikError
    └── TransportError         the connection layer
        ├── ConnectError       a dial that did not produce an authenticated connection
        │   └── PeerMismatch   the dialled address proved a different peer id
        ├── AuthenticationError  the peer proved no key, or a wrong one
        └── ConnectionClosed   the connection ended (carries the close code and reason)
            └── DifferentNetwork  the peer belongs to another network

Local faults (our misuse) and remote faults (the peer's) are told apart by
``ConnectionClosed.by_peer``. Errors of aioquic, cryptography and the OS are translated at the
transport boundary; nothing foreign escapes the public API. Frames that do not decode raise the
primitives' ``CodecError`` (``node.errors``).
"""

from __future__ import annotations

from node.errors import MosaikError
from node.transport.codes import describe


class TransportError(MosaikError):
    """A failure of the connection layer."""


class ConnectError(TransportError):
    """A dial that did not yield an authenticated connection."""


class PeerMismatch(ConnectError):
    """The dialled address proved a different peer id than the one expected."""


class AuthenticationError(TransportError):
    """The peer did not prove the key it claims."""


class ConnectionClosed(TransportError):
    """The connection ended; ``code`` is the application close code."""

    def __init__(self, code: int, reason: str = "", *, by_peer: bool = False) -> None:
        who = "peer" if by_peer else "local side"
        super().__init__(
            f"connection closed by {who}: {describe(code)}{': ' + reason if reason else ''}"
        )
        self.code = code
        self.reason = reason
        self.by_peer = by_peer


class DifferentNetwork(ConnectionClosed):
    """The peer belongs to another network."""
