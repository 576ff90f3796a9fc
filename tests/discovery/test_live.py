"""Discovery with real nodes on loopback: QUIC, gossip, sync, departures, TTL purge.

Catalogs hold the *other* peers: a node's own entry is not in its catalog, so a converged
network of N nodes shows N - 1 entries on every node.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from node import Digest, Network, SecretKey
from node.discovery import Gossip, PeerDeparted, SyncRefused
from node.discovery.events import DepartureReason
from node.discovery.service import DISCOVERY_ALPN, config_with_ttl
from node.primitives import encode
from node.transport import Endpoint, FaultShim, TransportConfig
from tests.conftest import deadline, wait_until

FAST = config_with_ttl(3.0)


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., object]]:
    started: list[Network] = []

    async def start(name: str = "live", **kwargs: object) -> Network:
        kwargs.setdefault("discovery", FAST)
        net = await Network.create(name, **kwargs)  # type: ignore[arg-type]
        started.append(net)
        return net

    yield start
    await asyncio.gather(*(n.close() for n in started))


def sees(net: Network, *others: Network) -> bool:
    return all(o.peer_id in net.discovery.catalog for o in others)


async def test_ten_nodes_converge_from_one_seed_and_see_a_late_joiner(nodes) -> None:
    seed = await nodes()
    rest = [await nodes(bootstrap=[seed.address]) for _ in range(9)]
    everyone = [seed, *rest]
    await wait_until(
        lambda: all(len(n.discovery.catalog) == 9 for n in everyone), 15, "10 nodes converge"
    )
    late = await nodes(bootstrap=[seed.address])
    await wait_until(lambda: all(sees(n, late) for n in everyone), 10, "all see the late joiner")
    await wait_until(lambda: len(late.discovery.catalog) == 10, 10, "the late joiner sees all")


async def test_networks_are_isolated(nodes) -> None:
    a_seed = await nodes("net-a")
    b_seed = await nodes("net-b")
    a = await nodes("net-a", bootstrap=[a_seed.address])
    # Wrongly configured: a net-b node given net-a's seed.
    stray = await nodes("net-b", bootstrap=[a_seed.address, b_seed.address])
    await wait_until(lambda: sees(a, a_seed) and sees(stray, b_seed), 10, "both networks form")
    # The stray did dial net-a's seed, and the handshake refused it (DifferentNetwork).
    await wait_until(
        lambda: stray.endpoint.statistics()["auth_failures"] >= 1, 10, "the stray is refused"
    )
    assert stray.peer_id not in a_seed.discovery.catalog
    assert a_seed.peer_id not in stray.discovery.catalog
    assert all(info.entry.network_id == a.network_id for info in a.discovery.catalog)


async def test_tags_propagate_both_ways(nodes) -> None:
    seed = await nodes()
    a = await nodes(bootstrap=[seed.address])
    b = await nodes(bootstrap=[seed.address])
    await wait_until(lambda: sees(b, a), 10, "b sees a")
    a.discovery.add_tags("matcher")
    matcher = Digest.from_name("matcher")
    await wait_until(
        lambda: matcher in (b.discovery.peer_info(a.peer_id) or _none).tags, 10, "tag seen"
    )
    a.discovery.remove_tags("matcher")
    await wait_until(
        lambda: matcher not in (b.discovery.peer_info(a.peer_id) or _none).tags, 10, "tag gone"
    )


class _NoInfo:
    tags: frozenset[Digest] = frozenset()


_none = _NoInfo()


async def rogue_link(target: Network) -> tuple[Endpoint, object]:
    """An authenticated discovery link from a node we drive by hand."""
    rogue = Endpoint(SecretKey.generate(), target.network_id)
    await rogue.start("127.0.0.1:0")
    conn = await rogue.connect(target.local_addr, DISCOVERY_ALPN, expected=target.peer_id)
    return rogue, await conn.open_stream()


async def test_tampered_or_replayed_entries_do_not_evict_good_ones(nodes) -> None:
    seed = await nodes()
    a = await nodes(bootstrap=[seed.address])
    await wait_until(lambda: sees(seed, a), 10, "seed sees a")
    old = a.discovery.local_entry.encode()
    a.discovery.add_tags("newer")
    await wait_until(
        lambda: Digest.from_name("newer") in (seed.discovery.peer_info(a.peer_id) or _none).tags,
        10,
        "newer entry arrived",
    )
    good = seed.discovery.peer_info(a.peer_id)
    rejected_before = seed.discovery.core.statistics().entries_rejected
    rogue, stream = await rogue_link(seed)
    try:
        tampered = bytearray(a.discovery.local_entry.encode())
        tampered[len(tampered) // 2] ^= 0x01
        await stream.send(Gossip(entries=(bytes(tampered), old)))  # type: ignore[attr-defined]
        await wait_until(
            lambda: seed.discovery.core.statistics().entries_rejected > rejected_before,
            10,
            "tampered entry counted as rejected",
        )
        assert seed.discovery.peer_info(a.peer_id) == good, "neither evicted nor rolled back"
    finally:
        await rogue.close()


async def test_malformed_frames_are_dropped_without_harm(nodes) -> None:
    seed = await nodes()
    a = await nodes(bootstrap=[seed.address])
    await wait_until(lambda: sees(seed, a), 10, "seed sees a")
    rogue, stream = await rogue_link(seed)
    try:
        dropped = seed.discovery.core.statistics().messages_dropped
        await stream.send_body(b"\xc1not msgpack")  # type: ignore[attr-defined]
        await stream.send_body(encode({"type": "nonsense"}))  # type: ignore[attr-defined]
        await wait_until(
            lambda: seed.discovery.core.statistics().messages_dropped >= dropped + 2,
            10,
            "both frames dropped",
        )
        b = await nodes(bootstrap=[seed.address])
        await wait_until(lambda: sees(seed, a, b), 10, "seed still serves")
    finally:
        await rogue.close()


async def test_graceful_shutdown_is_a_quick_departure(nodes) -> None:
    seed = await nodes(discovery=config_with_ttl(300.0))
    a = await nodes(bootstrap=[seed.address], discovery=config_with_ttl(300.0))
    await wait_until(lambda: sees(seed, a), 10, "seed sees a")
    events = seed.discovery.events()
    departed = asyncio.ensure_future(_first_departure(events, a))
    await a.close()
    event = await asyncio.wait_for(departed, deadline(2))
    assert event.reason is DepartureReason.GRACEFUL
    assert a.peer_id not in seed.discovery.catalog
    await events.aclose()


async def _first_departure(events: AsyncIterator[object], net: Network) -> PeerDeparted:
    async for event in events:
        if isinstance(event, PeerDeparted) and event.peer_id == net.peer_id:
            return event
    raise AssertionError("no departure")


async def test_partitioned_peer_is_purged_after_ttl_and_rediscovered(nodes) -> None:
    shim = FaultShim()
    ttl = config_with_ttl(2.0)
    seed = await nodes(discovery=ttl, faults=shim)
    a = await nodes(bootstrap=[seed.address], discovery=ttl, faults=shim)
    b = await nodes(bootstrap=[seed.address], discovery=ttl, faults=shim)
    await wait_until(lambda: sees(seed, a, b) and sees(a, b), 10, "converged")
    shim.partition([b.local_addr], [seed.local_addr, a.local_addr])
    await wait_until(
        lambda: not sees(seed, b) and not sees(a, b), 15, "b purged by TTL while cut off"
    )
    shim.heal()
    await wait_until(lambda: sees(seed, b) and sees(a, b), 20, "b rediscovered after healing")


async def test_sync_with_fetches_the_catalog_on_demand(nodes) -> None:
    seed = await nodes()
    a = await nodes(bootstrap=[seed.address])
    await wait_until(lambda: sees(a, seed), 10, "a sees the seed")
    lone = await nodes()
    lone.discovery.feed(a.discovery.local_entry)  # learn a's address out of band
    accepted = await asyncio.wait_for(lone.discovery.sync_with(a.peer_id), deadline(10))
    assert accepted >= 1
    assert sees(lone, a, seed)


def refused_metric(net: Network) -> float:
    value = net.metrics.registry.get_sample_value(
        "mosaik_discovery_syncs_refused_total", {"network": net.metrics.network}
    )
    assert value is not None, "the refused-syncs counter is exported"
    return value


async def test_a_peer_syncing_in_a_loop_is_refused_while_gossip_converges(nodes) -> None:
    seed = await nodes()
    greedy = await nodes(bootstrap=[seed.address])
    await wait_until(lambda: sees(greedy, seed) and sees(seed, greedy), 10, "a pair")
    assert refused_metric(seed) == 0
    config = seed.discovery.config
    started = time.monotonic()
    answered = 0
    refusals: list[SyncRefused] = []
    late: Network | None = None

    def converged() -> bool:
        return late is not None and sees(late, seed, greedy) and sees(greedy, late)

    async with asyncio.timeout(deadline(20)):
        while len(refusals) < 20 or not converged():
            try:
                await greedy.discovery.sync_with(seed.peer_id)
                answered += 1
            except SyncRefused as refused:
                refusals.append(refused)
                if late is None:  # the seed is being hammered: a newcomer must still join
                    late = await nodes(bootstrap=[seed.address])
    elapsed_ms = (time.monotonic() - started) * 1000
    assert refused_metric(seed) >= len(refusals)
    assert all(r.peer == seed.peer_id for r in refusals)
    assert all(0 < r.retry_after_ms <= config.sync_refill_ms for r in refusals)
    # The link's first sync took a token before the loop; one more per refill interval.
    assert answered <= config.sync_burst + elapsed_ms / config.sync_refill_ms
    assert greedy.peer_id in seed.discovery.neighbours, "refusals do not cost the link"


KIB = 1024


@pytest.mark.parametrize(
    ("max_frame", "message_bytes", "warned"),
    [
        (4096 * KIB, 1024 * KIB, False),  # the defaults: 1 MiB messages fit 4 MiB frames
        (512 * KIB, 511 * KIB, False),  # smaller frames: messages split to fit, envelope spared
        (64 * KIB, 256 * KIB, True),  # below two 128 KiB entries: kept there, and said
    ],
)
async def test_discovery_messages_fit_the_transport_frames(
    nodes: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    max_frame: int,
    message_bytes: int,
    warned: bool,
) -> None:
    net = await nodes(transport=TransportConfig(max_frame=max_frame))
    assert net.discovery.config.max_message_bytes == message_bytes
    assert ("large entries or catalogs will not get through" in caplog.text) == warned


async def test_sigkilled_process_is_purged_after_ttl() -> None:
    async with Network.create("kill-test", discovery=config_with_ttl(2.0)) as seed:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "node", "node", "run", "--bind", "127.0.0.1:0",
            "--peer-ttl", "2", "--bootstrap", str(seed.address),
            env={**os.environ, "MOSAIK_NETWORK": "kill-test"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), deadline(15))).decode()
            match = re.search(r"peer_id=(\w+)", line)
            assert match, line
            child = bytes.fromhex(match.group(1))

            def known() -> bool:
                return any(p.peer_id.bytes == child for p in seed.discovery.catalog)

            await wait_until(known, 15, "seed sees the child process")
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await wait_until(lambda: not known(), 15, "SIGKILLed node purged after its TTL")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
