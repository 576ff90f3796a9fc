"""Live discovery convergence on loopback: real QUIC, real gossip, one seed.

For N nodes started together and bootstrapped from one seed, the time until every node's
catalog lists every other node; N = 10, 25, 50 in one process, and N = 10 as separate
processes. The peer for comparison is the same protocol in the deterministic simulation
(bench/discovery_sim.py), whose rounds-to-converge against log2 N it prints too.

    .venv/bin/python bench/discovery.py [--sizes 10 25 50] [--processes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node import Network


async def in_process(size: int) -> float:
    start = time.perf_counter()
    seed = await Network.create("bench-discovery")
    nodes = [seed]
    nodes += await asyncio.gather(
        *(Network.create("bench-discovery", bootstrap=[seed.address]) for _ in range(size - 1))
    )
    try:
        while not all(len(n.discovery.catalog) == size - 1 for n in nodes):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return time.perf_counter() - start
    finally:
        await asyncio.gather(*(n.close() for n in nodes))


def _status(admin: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://{admin}/status", timeout=5) as response:
        status: dict[str, object] = json.load(response)
        return status


def as_processes(size: int) -> float:
    ready = re.compile(r"peer_id=(\w+) address=(\S+) admin=(\S+)")
    base = [sys.executable, "-m", "node", "node", "run", "--network", "bench-discovery"]
    base += ["--bind", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"]
    procs: list[subprocess.Popen[str]] = []
    admins: list[str] = []
    start = time.perf_counter()
    try:
        first = subprocess.Popen(base, stdout=subprocess.PIPE, text=True)
        procs.append(first)
        assert first.stdout is not None
        match = ready.search(first.stdout.readline())
        assert match, "seed did not start"
        admins.append(match.group(3))
        seed = f"{match.group(1)}@{match.group(2)}"
        for _ in range(size - 1):
            procs.append(
                subprocess.Popen([*base, "--bootstrap", seed], stdout=subprocess.PIPE, text=True)
            )
        for proc in procs[1:]:
            assert proc.stdout is not None
            match = ready.search(proc.stdout.readline())
            assert match, "node did not start"
            admins.append(match.group(3))
        while not all(len(_status(a)["catalog"]) == size - 1 for a in admins):  # type: ignore[arg-type]
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--processes", type=int, default=10)
    args = parser.parse_args()
    print("live discovery on loopback, one seed, default gossip settings (200 ms rounds)")
    for size in args.sizes:
        seconds = asyncio.run(in_process(size))
        rounds = seconds / 0.2
        print(
            f"  N={size:3d} one process : {seconds:6.2f} s to converge "
            f"({rounds:4.1f} rounds; log2 N = {math.log2(size):4.2f})"
        )
    if args.processes:
        seconds = as_processes(args.processes)
        print(
            f"  N={args.processes:3d} processes   : {seconds:6.2f} s to converge (incl. start-up)"
        )
    print("simulation (same cores, simulated network):")
    sim = Path(__file__).with_name("discovery_sim.py")
    subprocess.run([sys.executable, str(sim), "--sizes", "100", "1000", "--loss", "0.1"],
                   check=True, env={**os.environ})  # fmt: skip


if __name__ == "__main__":
    main()
