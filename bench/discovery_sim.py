"""Discovery gossip in the deterministic network simulation: rounds to converge vs log2 N.

Run: .venv/bin/python bench/discovery_sim.py [--sizes 100 1000] [--loss 0 0.1] [--seed 1]

This is a simulation (node/discovery/simulation.py): real discovery cores, real codec and
signatures, a simulated clock and network (5-60 ms latency, message loss). A round is one
gossip interval (200 ms). For each N it reports:
- join: all N nodes start together, bootstrapped from ONE seed node; rounds until every node's
  catalog lists every other node;
- change: after that, a tag change on a random node; rounds until every node holds it
  (mean and max over several changes), against log2 N.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from node.discovery import AddTags
from node.discovery.simulation import SimNetworkConfig, Simulation
from node.primitives import Digest


def run(size: int, loss: float, seed: int, changes: int) -> None:
    started = time.perf_counter()
    sim = Simulation(seed, network=SimNetworkConfig(loss=loss))
    round_ms = sim.config.gossip_interval_ms
    first = sim.add_node()
    for _ in range(size - 1):
        sim.add_node(bootstrap=[first])
    converged_at = sim.run_until_true(sim.converged, limit_ms=600_000)
    if converged_at is None:
        raise SystemExit(f"N={size}: no convergence within 600 s [seed {seed}]")
    join_rounds = converged_at / round_ms
    sim.run_until(sim.now + 5_000)
    change_rounds = []
    for index in sim.rng.sample(range(size), changes):
        sim.change(index, AddTags(frozenset({Digest.from_name(f"bench-{sim.now}")})))
        version = sim.nodes[index].core.local_entry.version
        start = sim.now
        done = sim.run_until_true(
            lambda index=index, version=version: sim.everyone_holds(index, version),
            limit_ms=60_000,
            step_ms=10,
        )
        if done is None:
            raise SystemExit(f"N={size}: change of node {index} never arrived [seed {seed}]")
        change_rounds.append((done - start) / round_ms)
    log2 = math.log2(size)
    mean = statistics.mean(change_rounds)
    degrees = sim.degrees()
    print(
        f"N={size:5d}  log2 N={log2:5.2f}  join: {join_rounds:5.1f} rounds  "
        f"change: mean {mean:4.1f} max {max(change_rounds):4.1f} rounds "
        f"(mean/log2 N = {mean / log2:.2f})  degree {min(degrees)}..{max(degrees)}  "
        f"msgs {sim.messages_sent} ({sim.messages_lost} lost)  "
        f"[{time.perf_counter() - started:.0f} s wall]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--loss", type=float, nargs="+", default=[0.0, 0.10])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    for loss in args.loss:
        print(
            f"simulation, seed {args.seed}, {loss:.0%} message loss, one seed node, 200 ms rounds"
        )
        for size in args.sizes:
            run(size, loss, args.seed, args.changes)


if __name__ == "__main__":
    main()
