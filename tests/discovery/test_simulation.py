"""The gossip core under deterministic simulation: many nodes, one seed node, lossy network.

Every run is seeded; a failure message names the seed (set DISCOVERY_SIM_SEED to replay it).
Rounds are gossip intervals (200 ms by default).
"""

from __future__ import annotations

import math
import os
import statistics

import pytest

from node.discovery import AddTags, DepartureReason, DiscoveryConfig, PeerDeparted
from node.discovery.simulation import SimNetworkConfig, Simulation
from node.primitives import Digest

SEED = int(os.environ.get("DISCOVERY_SIM_SEED", "1729"))
LOSSY = SimNetworkConfig(loss=0.10)
ROUND_MS = DiscoveryConfig().gossip_interval_ms


def seeded(sim: Simulation, what: str) -> str:
    missing = sim.missing()
    return (
        f"{what} [seed {sim.seed}: rerun with DISCOVERY_SIM_SEED={sim.seed}]; "
        f"{len(missing)} nodes not converged: {dict(list(missing.items())[:10])}"
    )


def cluster(
    seed: int,
    size: int,
    *,
    config: DiscoveryConfig | None = None,
    network: SimNetworkConfig = LOSSY,
) -> Simulation:
    """``size`` nodes started together, all bootstrapped from node 0 only."""
    sim = Simulation(seed, config=config, network=network)
    first = sim.add_node()
    for _ in range(size - 1):
        sim.add_node(bootstrap=[first])
    return sim


def converge(sim: Simulation, limit_ms: int, what: str) -> float:
    start = sim.now
    done = sim.run_until_true(sim.converged, limit_ms=limit_ms)
    assert done is not None, seeded(sim, what)
    return (done - start) / ROUND_MS


def change_rounds(sim: Simulation, index: int, limit_ms: int = 30_000) -> float:
    """Rounds until every live node holds a tag change made on node ``index``."""
    tag = Digest.from_name(f"tag-{sim.now}")
    sim.change(index, AddTags(frozenset({tag})))
    version = sim.nodes[index].core.local_entry.version
    start = sim.now
    done = sim.run_until_true(
        lambda: sim.everyone_holds(index, version), limit_ms=limit_ms, step_ms=10
    )
    assert done is not None, seeded(sim, f"change of node {index} did not reach everyone")
    return (done - start) / ROUND_MS


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_a_hundred_nodes_from_one_seed_converge_despite_loss(seed: int) -> None:
    sim = cluster(seed, 120)
    rounds = converge(sim, 60_000, "120 nodes did not converge")
    print(f"seed {seed}: 120 nodes, 10% loss: converged in {rounds:.0f} rounds")
    assert sim.messages_lost > 0
    # Neighbour views are bounded and everyone is connected to the overlay.
    degrees = sim.degrees()
    assert min(degrees) >= 1 and max(degrees) <= 2 * sim.config.max_neighbours, seeded(
        sim, f"degrees {min(degrees)}..{max(degrees)}"
    )
    sim.run_until(sim.now + 10_000)
    assert max(sim.degrees()) <= sim.config.max_neighbours, seeded(sim, "view above maximum")
    assert sim.converged(), seeded(sim, "lost convergence while idle")


def test_dissemination_rounds_grow_with_log_n() -> None:
    averages = {}
    for size in (32, 256):
        sim = cluster(SEED, size)
        converge(sim, 60_000, f"{size} nodes did not converge")
        sim.run_until(sim.now + 5_000)
        picks = sim.rng.sample(range(size), 6)
        averages[size] = statistics.mean(change_rounds(sim, index) for index in picks)
        print(
            f"N={size}: a change reaches all in {averages[size]:.1f} rounds (log2 N = "
            f"{math.log2(size):.0f})"
        )
    # Within log2 N rounds at both sizes (8x the nodes would take 8x the rounds if linear).
    for size, rounds in averages.items():
        assert rounds <= math.log2(size), f"seed {SEED}: {averages}"


def test_partitions_heal() -> None:
    sim = cluster(SEED, 100)
    converge(sim, 60_000, "100 nodes did not converge before the partition")
    left = range(0, 50)
    sim.partition(left)
    sim.run_until(sim.now + 5_000)
    sim.change(3, AddTags(frozenset({Digest.from_name("left-news")})))
    sim.change(77, AddTags(frozenset({Digest.from_name("right-news")})))
    left_version = sim.nodes[3].core.local_entry.version
    right_version = sim.nodes[77].core.local_entry.version
    sim.run_until(sim.now + 25_000)
    held = sim.nodes[60].core.catalog.signed(sim.nodes[3].peer_id)
    assert held is None or held.version < left_version, seeded(sim, "news crossed the cut")
    sim.heal()
    healed_at = sim.now
    done = sim.run_until_true(
        lambda: (
            sim.everyone_holds(3, left_version)
            and sim.everyone_holds(77, right_version)
            and sim.converged()
        ),
        limit_ms=90_000,
    )
    assert done is not None, seeded(sim, "partition did not heal")
    print(f"partition healed: all news everywhere {(done - healed_at) / ROUND_MS:.0f} rounds later")


def test_departed_and_crashed_nodes_leave_every_catalog() -> None:
    config = DiscoveryConfig(ttl_ms=30_000, announce_interval_ms=8_000)
    sim = cluster(SEED, 100, config=config)
    converge(sim, 60_000, "100 nodes did not converge")
    leavers, crashed = [10, 20, 30, 40, 50], [15, 25, 35, 45, 55]
    for index in leavers:
        sim.leave(index)
    rounds = converge(sim, 10_000, "graceful departures were not seen by all")
    print(f"graceful departures seen by all in {rounds:.0f} rounds")
    graceful = {
        event.peer_id
        for node in sim.alive()
        for event in node.events
        if isinstance(event, PeerDeparted) and event.reason is DepartureReason.GRACEFUL
    }
    assert graceful == {sim.nodes[i].peer_id for i in leavers}
    crash_time = sim.now
    for index in crashed:
        sim.crash(index)
    sim.run_until(crash_time + config.ttl_ms // 2)
    assert not sim.converged()  # crashed peers are still listed: no departure was sent
    converge(sim, config.ttl_ms, "crashed nodes were not purged after the TTL")
    assert sim.now - crash_time <= config.ttl_ms + 1_000
    # Live peers keep renewing their entries: nobody alive expires.
    sim.run_until(sim.now + 2 * config.ttl_ms)
    assert sim.converged(), seeded(sim, "live peers expired")


def test_a_node_that_lost_all_neighbours_rejoins_through_its_catalog() -> None:
    sim = cluster(SEED, 40, network=SimNetworkConfig(loss=0.0))
    converge(sim, 30_000, "40 nodes did not converge")
    lonely = sim.nodes[7]
    gone = {sim.index_of(peer) for peer in lonely.core.neighbours}
    for index in gone:
        sim.crash(index)
    sim.run_until(sim.now + sim.network.idle_timeout_ms + 3_000)
    now_linked = {sim.index_of(peer) for peer in lonely.core.neighbours}
    assert not now_linked & gone
    assert len(now_linked) >= sim.config.target_neighbours, seeded(sim, "no rejoin")


def test_clock_drift_beyond_the_bound_is_rejected() -> None:
    sim = cluster(SEED, 20, network=SimNetworkConfig(loss=0.0))
    skewed = sim.add_node(bootstrap=[0], clock_offset_ms=120_000)
    tolerated = sim.add_node(bootstrap=[0], clock_offset_ms=20_000)
    sim.run_until(sim.now + 10_000)
    for node in sim.alive():
        if node.index not in (skewed, tolerated):
            assert sim.nodes[skewed].peer_id not in node.core.catalog
            assert sim.nodes[tolerated].peer_id in node.core.catalog
    assert sim.nodes[0].core.statistics().entries_rejected > 0


def test_networks_stay_isolated() -> None:
    sim = cluster(SEED, 20, network=SimNetworkConfig(loss=0.0))
    strangers = [sim.add_node(bootstrap=[0], network_id=Digest.from_name("other")) for _ in "ab"]
    sim.run_until(sim.now + 10_000)
    ours = {sim.nodes[i].peer_id for i in range(20)}
    for index in range(20):
        assert set(sim.nodes[index].core.catalog.peer_ids()) == ours - {sim.nodes[index].peer_id}
    for index in strangers:
        assert len(sim.nodes[index].core.catalog) <= 1  # only each other, never ours


def test_the_same_seed_replays_the_same_run() -> None:
    def fingerprint() -> tuple[object, ...]:
        sim = cluster(SEED, 30)
        converge(sim, 30_000, "30 nodes did not converge")
        return (
            sim.now,
            sim.messages_sent,
            sim.messages_lost,
            tuple(tuple(node.core.neighbours) for node in sim.nodes),
        )

    assert fingerprint() == fingerprint()
