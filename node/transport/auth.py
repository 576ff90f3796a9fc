"""Mutual authentication by node key, bound to the QUIC connection.

The server proves its key in the TLS handshake: its certificate carries the node's ed25519 key
and TLS checks its CertificateVerify over the transcript. The client then proves its key on
stream 0 with a signature over (context, network id, ALPN, client id, server id). Because the
server id comes from the TLS-proven certificate, a proof given to one server is useless to any
other: a man in the middle would have to present the real server's key, which it does not hold.
The proof travels inside the encrypted connection, so no third party sees it to replay it.
"""

from __future__ import annotations

import msgspec

from node.primitives.digest import Digest, NetworkId
from node.primitives.keys import PeerId, SecretKey

AUTH_VERSION = 1
AUTH_STREAM_ID = 0
_CONTEXT = b"mosaik/transport/auth/v1"


class AuthHello(msgspec.Struct, frozen=True):
    version: int
    network_id: NetworkId
    peer_id: PeerId
    signature: bytes


class AuthAccepted(msgspec.Struct, frozen=True):
    network_id: NetworkId


def _payload(network_id: NetworkId, alpn: str, client: PeerId, server: PeerId) -> bytes:
    return Digest.hash(
        _CONTEXT + network_id.bytes + alpn.encode() + b"\x00" + client.bytes + server.bytes
    ).bytes


def make_hello(key: SecretKey, network_id: NetworkId, alpn: str, server: PeerId) -> AuthHello:
    signature = key.sign(_payload(network_id, alpn, key.peer_id, server))
    return AuthHello(AUTH_VERSION, network_id, key.peer_id, signature)


def hello_is_valid(hello: AuthHello, network_id: NetworkId, alpn: str, server: PeerId) -> bool:
    return hello.version == AUTH_VERSION and hello.peer_id.verify(
        hello.signature, _payload(network_id, alpn, hello.peer_id, server)
    )
