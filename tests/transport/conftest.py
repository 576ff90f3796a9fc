from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from node.primitives import Digest, SecretKey
from node.transport import Endpoint, FaultShim, TransportConfig

NETWORK = Digest.from_name("transport-tests")


@pytest.fixture
async def make_endpoint() -> AsyncIterator[Callable[..., object]]:
    endpoints: list[Endpoint] = []

    async def make(
        network: Digest = NETWORK,
        config: TransportConfig | None = None,
        faults: FaultShim | None = None,
    ) -> Endpoint:
        endpoint = Endpoint(SecretKey.generate(), network, config, faults=faults)
        await endpoint.start("127.0.0.1:0")
        endpoints.append(endpoint)
        return endpoint

    yield make
    for endpoint in endpoints:
        await endpoint.close()
