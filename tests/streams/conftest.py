"""Real nodes on loopback for the streams integration tests.

Every node bootstraps from the first one, so their catalogs converge through discovery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import msgspec
import pytest

from node.network import Network
from node.primitives import SecretKey
from node.streams import Streams
from node.transport import TransportConfig

NETWORK_NAME = "streams-tests"


class Reading(msgspec.Struct, frozen=True):
    """The datum most tests send."""

    sensor: str
    seq: int
    value: float = 0.0


MakeNode = Callable[..., Awaitable[Network]]


def streams(net: Network) -> Streams:
    return net.streams


@pytest.fixture
async def make_node() -> AsyncIterator[MakeNode]:
    nodes: list[Network] = []

    async def make(
        *,
        tags: Iterable[str] = (),
        transport: TransportConfig | None = None,
        secret_key: SecretKey | None = None,
        bind: str = "127.0.0.1:0",
        bootstrap: bool = True,
        **options: Any,
    ) -> Network:
        seeds = [nodes[0].address] if bootstrap and nodes else []
        net = await Network.create(
            NETWORK_NAME,
            tags=tags,
            transport=transport,
            secret_key=secret_key,
            bind=bind,
            bootstrap=seeds,
            **options,
        )
        nodes.append(net)
        return net

    yield make
    for net in reversed(nodes):
        await net.close()


def sees(net: Network, *others: Network) -> bool:
    catalog = net.discovery.catalog
    return all(other.peer_id in catalog for other in others)
