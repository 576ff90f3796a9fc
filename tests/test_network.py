"""The Network facade with real nodes on loopback."""

from __future__ import annotations

import json

import pytest

from node import ConfigError, DifferentNetwork, Digest, Network, PeerAddr, SecretKey
from node.network import PING_ALPN
from tests.conftest import http_get, wait_until


async def test_create_is_awaitable_and_a_context_manager() -> None:
    net = await Network.create("net-facade")
    assert net.network_id == Digest.from_name("net-facade")
    assert net.local_addr.port > 0
    await net.close()
    await net.close()  # idempotent
    async with Network.create("net-facade") as other:
        assert other.peer_id != net.peer_id


async def test_bootstrap_connects_to_the_seed_by_peer_address() -> None:
    key = SecretKey.generate()
    async with Network.create("boot", secret_key=key) as seed:
        assert seed.peer_id == key.peer_id
        async with (
            Network.create("boot", bootstrap=[str(seed.address)]) as a,
            Network.create("boot", bootstrap=[seed.address]) as b,
        ):
            await wait_until(
                lambda: seed.connected_peers() >= {a.peer_id, b.peer_id}, 10, "seed sees both"
            )
            assert a.connected_peers() == {seed.peer_id}
            rtt = await a.ping(seed.address)
            assert 0 < rtt < 1


async def test_bootstrap_retries_until_the_seed_appears() -> None:
    seed_key = SecretKey.generate()
    probe = await Network.create("late")
    port = probe.local_addr.port
    await probe.close()  # free a port for the late seed
    target = PeerAddr(seed_key.peer_id, probe.local_addr)
    async with Network.create("late", bootstrap=[target]) as joiner:
        async with Network.create("late", secret_key=seed_key, bind=f"127.0.0.1:{port}") as seed:
            await wait_until(lambda: joiner.peer_id in seed.connected_peers(), 15, "late seed")


async def test_different_networks_refuse_each_other() -> None:
    async with Network.create("one") as a, Network.create("two") as b:
        with pytest.raises(DifferentNetwork):
            await a.dial(b.address, PING_ALPN)


async def test_admin_endpoint_serves_status_metrics_health() -> None:
    async with Network.create("admin", metrics_addr="127.0.0.1:0", tags=["seed"]) as net:
        assert net.admin_addr is not None
        code, body = await http_get(net.admin_addr, "/status")
        status = json.loads(body)
        assert code == 200 and status["peer_id"] == net.peer_id.hex()
        assert status["network"] == "admin"
        code, body = await http_get(net.admin_addr, "/metrics")
        assert code == 200 and b"mosaik_transport_connections" in body
        assert b"mosaik_discovery_catalog_size" in body
        assert b"mosaik_discovery_gossip_messages_sent_total" in body
        assert (await http_get(net.admin_addr, "/healthz"))[0] == 200
        assert (await http_get(net.admin_addr, "/nope"))[0] == 404


async def test_bad_input_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not <peer-id>@host:port"):
        await Network.create("x", bootstrap=["127.0.0.1:7400"])
    with pytest.raises(ConfigError, match="port"):
        await Network.create("x", bind="127.0.0.1:notaport")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="data directory"):
        await Network.create("x", data_dir=blocker / "sub")
