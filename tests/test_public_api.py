"""The exported names are a contract; foreign exceptions never cross the public API."""

from __future__ import annotations

import pytest

import node
from node import ConfigError, ConnectError, MosaikError, Network, PeerAddr, SecretKey

EXPECTED = {
    "CodecError", "ConfigError", "ConnectError", "ConnectionClosed", "DecodeError",
    "DifferentNetwork", "Digest", "GroupId", "MosaikError", "Network", "NetworkId", "PeerAddr",
    "PeerId", "PeerMismatch", "SecretKey", "SocketAddr", "StoreId", "StreamId", "Tag", "Ticket",
    "TransportError", "__version__",
}  # fmt: skip


def test_exported_names_are_pinned() -> None:
    assert EXPECTED <= set(node.__all__)
    for name in node.__all__:
        assert getattr(node, name) is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda: Network.create("x", bind="256.0.0.1:1"),
        lambda: Network.create("x", bind="127.0.0.1:99999"),
        lambda: Network.create("x", bootstrap=["nothex@127.0.0.1:1"]),
        lambda: Network.create("x", metrics_addr="127.0.0.1:-1"),
    ],
)
async def test_bad_configuration_is_a_config_error(call) -> None:
    with pytest.raises(ConfigError):
        await call()


async def test_unreachable_peer_is_a_mosaik_error() -> None:
    from node.transport import TransportConfig

    async with Network.create("x", transport=TransportConfig(idle_timeout=0.3)) as net:
        ghost = PeerAddr(SecretKey.generate().peer_id, net.local_addr._replace(port=9))
        with pytest.raises(ConnectError) as info:
            await net.dial(ghost, "/mosaik/ping/1")
        assert isinstance(info.value, MosaikError)
