"""Discovery gossip in the deterministic network simulation: rounds to converge vs log2 N.

Run: .venv/bin/python bench/discovery_sim.py [--sizes 100 1000] [--loss 0 0.1] [--seed 1]

This is a simulation (node/discovery/simulation.py): real discovery cores, real codec and
signatures, a simulated clock and network (5-60 ms latency, whole messages lost at random).
A round is one gossip interval (200 ms). For each N it reports:
- join: all N nodes start together, bootstrapped from ONE seed node; rounds until every
  node's catalog lists every other node;
- change: once the cluster has settled (re-announces flowing in the background), a tag change
  on a random node; rounds until 50%, 99% and 100% of the nodes hold it, averaged over several
  changes, against log2 N.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

# Run as a script, bench/ comes first on sys.path and bench/attestation.py would shadow the
# attestation package the runtime imports: import from the project root instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from node.discovery import AddTags  # noqa: E402
from node.discovery.simulation import SimNetworkConfig, Simulation  # noqa: E402
from node.primitives import Digest  # noqa: E402


def spread(sim: Simulation, index: int) -> list[float]:
    """Rounds until each other live node holds a change made now on node ``index``."""
    sim.change(index, AddTags(frozenset({Digest.from_name(f"bench-{sim.now}")})))
    peer = sim.nodes[index].peer_id
    version = sim.nodes[index].core.local_entry.version
    waiting = [node for node in sim.alive() if node.index != index]
    start = sim.now
    arrivals: list[float] = []
    while waiting:
        if sim.now - start > 60_000:
            raise SystemExit(f"change of node {index} never arrived [seed {sim.seed}]")
        sim.run_until(sim.now + 10)
        still = []
        for node in waiting:
            held = node.core.catalog.signed(peer)
            if held is not None and held.version >= version:
                arrivals.append((sim.now - start) / sim.config.gossip_interval_ms)
            else:
                still.append(node)
        waiting = still
    return sorted(arrivals)


def run(size: int, loss: float, seed: int, changes: int, settle_ms: int) -> None:
    started = time.perf_counter()
    sim = Simulation(seed, network=SimNetworkConfig(loss=loss))
    first = sim.add_node()
    for _ in range(size - 1):
        sim.add_node(bootstrap=[first])
    converged_at = sim.run_until_true(sim.converged, limit_ms=600_000)
    if converged_at is None:
        raise SystemExit(f"N={size}: no convergence within 600 s [seed {seed}]")
    join_rounds = converged_at / sim.config.gossip_interval_ms
    sim.run_until(sim.now + settle_ms)
    p50, p99, full = [], [], []
    for index in sim.rng.sample(range(size), changes):
        arrivals = spread(sim, index)
        p50.append(arrivals[len(arrivals) // 2])
        p99.append(arrivals[int(len(arrivals) * 0.99) - 1])
        full.append(arrivals[-1])
    degrees = sim.degrees()
    print(
        f"N={size:5d}  log2 N={math.log2(size):5.2f}  join {join_rounds:5.1f}  "
        f"change p50 {statistics.mean(p50):4.1f}  p99 {statistics.mean(p99):4.1f}  "
        f"all {statistics.mean(full):4.1f} (worst {max(full):4.1f})  "
        f"degree {min(degrees)}..{max(degrees)}  msgs {sim.messages_sent} "
        f"({sim.messages_lost} lost)  [{time.perf_counter() - started:.0f} s wall]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--loss", type=float, nargs="+", default=[0.0, 0.10])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after joining")
    args = parser.parse_args()
    for loss in args.loss:
        print(
            f"simulation, seed {args.seed}, {loss:.0%} message loss, one seed node; "
            "rounds of 200 ms"
        )
        for size in args.sizes:
            run(size, loss, args.seed, args.changes, int(args.settle * 1000))


if __name__ == "__main__":
    main()
