"""Replicated Map on loopback: insert throughput and read-your-write latency, beside PySyncObj.

Three nodes, each in its own process, on this machine, all writers of one Map (its group
formed by all three: ``bootstrap_expect=3``), default group timing, in one run:
- throughput: ``--writers`` concurrent writers spread over the three nodes (16: 6/5/5) run
  ``insert(small key, int)`` for ``--seconds``; committed inserts/s over the three, and p50/p99
  of one insert (call to committed and applied on the writer's node), with the durable SQLite
  log (the nodes have a data directory: fsync per batch) and with the in-memory log;
- read-your-write: ``--samples`` inserts one after another on a follower A; "same node" is an
  insert's call to its return, after which A's local ``get`` must already see it (a miss is
  reported); "other node" is the call on A until the other follower B's local replica has it
  (B wakes on ``when.updated()``; the processes share the machine's clock);
- PySyncObj (pip install -e .[bench]) with its default settings (no journal): a ``ReplDict``
  consumer on three ``SyncObj`` nodes, the same writers calling ``set(key, value, sync=True)``
  on their node, the same read-your-write steps (B polls its local dict every 0.2 ms, as
  ``ReplDict`` has no change notification); then the ratios ours / PySyncObj. Its followers
  hear of a commit only with its next append-entries round (``appendEntriesPeriod``, 0.1 s by
  default), which bounds what a write through a follower costs there.

    .venv/bin/python bench/collections.py [--seconds 5] [--writers 16] [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This file's name is the stdlib's ``collections``: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

NETWORK = "collections-bench"
STORE = "bench"
LOGS = (
    Path(os.environ["COLLECTIONS_BENCH_LOGS"]) if os.environ.get("COLLECTIONS_BENCH_LOGS") else None
)
"""A directory for the members' logs (at INFO), to see what happened in a slow run."""

RYW_POLL = 0.0002
"""How often a PySyncObj reader looks at its local dict for the awaited key, in seconds."""


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def _ryw_key(i: int) -> str:
    return f"ryw-{i}"


def _reply(verb: str, payload: Any) -> None:
    print(f"{verb} {json.dumps(payload)}", flush=True)


# -- member processes: each reads one command a line on stdin and answers one line -----------
#
#   role                         -> role {"role": "leader" | "follower" | ...}
#   load START SECONDS WRITERS   -> load {"count", "elapsed", "latencies", "failures"}
#                                   (START: epoch seconds)
#   watch N                      -> watching {} at once, then seen {"at": [epoch secs]}
#   write N                      -> wrote {"start": [...], "returned": [...], "misses": n}


async def _mosaik_member(args: argparse.Namespace) -> None:
    from node.collections import GroupOptions
    from node.network import Network
    from node.primitives import SecretKey

    key = SecretKey.from_seed(args.index.to_bytes(32, "big"))
    async with Network.create(
        NETWORK,
        secret_key=key,
        bind=f"127.0.0.1:{args.port}",
        bootstrap=[args.seed] if args.index != 1 else [],
        data_dir=args.data_dir,
    ) as net:
        votes = net.collections.map(
            STORE, key=str, value=int, group=GroupOptions(bootstrap_expect=3)
        )
        await votes.when.online()
        print("online", flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            verb, *params = line.split()
            if verb == "role":
                _reply("role", {"role": net.groups.status()[0]["role"]})
            elif verb == "load":
                await _mosaik_load(votes, args.index, float(params[0]), *params[1:])
            elif verb == "watch":
                await _mosaik_watch(votes, int(params[0]))
            elif verb == "write":
                await _mosaik_write(votes, int(params[0]))


async def _mosaik_load(votes: Any, index: int, start: float, seconds: str, writers: str) -> None:
    from node.groups import Offline

    stop = start + float(seconds)
    latencies: list[float] = []
    failures = 0

    async def writer(n: int) -> None:
        nonlocal failures
        i = 0
        while (began := time.time()) < stop:
            try:
                await votes.insert(f"{index}-{n}-{i}", i)
            except Offline:
                failures += 1
                continue
            latencies.append(time.time() - began)
            i += 1

    await asyncio.sleep(max(0.0, start - time.time()))
    await asyncio.gather(*(writer(n) for n in range(int(writers))))
    elapsed = time.time() - start
    result = {"count": len(latencies), "elapsed": elapsed, "latencies": latencies}
    _reply("load", {**result, "failures": failures})


async def _mosaik_watch(votes: Any, samples: int) -> None:
    seen: list[float] = []
    _reply("watching", {})
    while True:
        now = time.time()
        while len(seen) < samples and _ryw_key(len(seen)) in votes:
            seen.append(now)
        if len(seen) == samples:
            break
        await votes.when.updated()
    _reply("seen", {"at": seen})


async def _mosaik_write(votes: Any, samples: int) -> None:
    starts, returns, misses = [], [], 0
    for i in range(samples):
        starts.append(time.time())
        await votes.insert(_ryw_key(i), i)
        returns.append(time.time())
        misses += votes.get(_ryw_key(i)) != i
    _reply("wrote", {"start": starts, "returned": returns, "misses": misses})


def _pysyncobj_member(args: argparse.Namespace) -> None:
    from pysyncobj import SyncObj
    from pysyncobj.batteries import ReplDict

    ports = args.tcp_ports
    me = f"127.0.0.1:{ports[args.index - 1]}"
    partners = [f"127.0.0.1:{p}" for p in ports if f"127.0.0.1:{p}" != me]
    votes = ReplDict()
    node = SyncObj(me, partners, consumers=[votes])
    while not (node._isReady() and node._getLeader() is not None):
        time.sleep(0.05)
    print("online", flush=True)
    for line in sys.stdin:
        verb, *params = line.split()
        if verb == "role":
            _reply("role", {"role": "leader" if node._isLeader() else "follower"})
        elif verb == "load":
            _pysyncobj_load(votes, args.index, float(params[0]), *params[1:])
        elif verb == "watch":
            _pysyncobj_watch(votes, int(params[0]))
        elif verb == "write":
            _pysyncobj_write(votes, int(params[0]))


def _pysyncobj_load(votes: Any, index: int, start: float, seconds: str, writers: str) -> None:
    from pysyncobj import SyncObjException

    stop = start + float(seconds)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def writer(n: int) -> None:
        nonlocal failures
        i = 0
        while (began := time.time()) < stop:
            try:
                votes.set(f"{index}-{n}-{i}", i, sync=True, timeout=10)
            except SyncObjException:
                with lock:
                    failures += 1
                continue
            with lock:
                latencies.append(time.time() - began)
            i += 1

    time.sleep(max(0.0, start - time.time()))
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(int(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - start
    result = {"count": len(latencies), "elapsed": elapsed, "latencies": latencies}
    _reply("load", {**result, "failures": failures})


def _pysyncobj_watch(votes: Any, samples: int) -> None:
    seen: list[float] = []
    _reply("watching", {})
    while len(seen) < samples:
        if _ryw_key(len(seen)) in votes:
            seen.append(time.time())
        else:
            time.sleep(RYW_POLL)
    _reply("seen", {"at": seen})


def _pysyncobj_write(votes: Any, samples: int) -> None:
    starts, returns, misses = [], [], 0
    for i in range(samples):
        starts.append(time.time())
        votes.set(_ryw_key(i), i, sync=True, timeout=10)
        returns.append(time.time())
        misses += votes.get(_ryw_key(i)) != i
    _reply("wrote", {"start": starts, "returned": returns, "misses": misses})


# -- the coordinator ------------------------------------------------------------------------


def _wait(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if found := condition():
            return found
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}")


class Member:
    """One member process: commands go to its stdin, its answers come back a line each."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        with log.open("a") as stderr:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        self.lines: list[str] = []
        stdout = self.process.stdout
        assert stdout is not None

        def read() -> None:
            for line in stdout:
                self.lines.append(line.strip())

        threading.Thread(target=read, daemon=True).start()

    def send(self, command: str) -> int:
        """Send ``command``; returns the count of lines so far, for ``answer``."""
        stdin = self.process.stdin
        assert stdin is not None
        mark = len(self.lines)
        stdin.write(command + "\n")
        stdin.flush()
        return mark

    def answer(self, verb: str, mark: int, seconds: float) -> dict[str, Any]:
        """The payload of the first ``verb`` line printed after ``mark``."""

        def found() -> str | None:
            if self.process.poll() is not None:
                tail = "\n".join(self.log.read_text().splitlines()[-20:])
                raise SystemExit(f"a member exited with {self.process.returncode}:\n{tail}")
            return next((x for x in self.lines[mark:] if x.startswith(verb + " ")), None)

        line = _wait(found, seconds, f"'{verb}' from a member")
        return dict(json.loads(line.split(" ", 1)[1]))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _start_members(role: str, data: Path | None, logs: Path) -> list[Member]:
    """Three members of ``role``; their stderr (and, with COLLECTIONS_BENCH_LOGS, their logs)
    go to files in ``logs``."""
    udp = [_free_port(socket.SOCK_DGRAM) for _ in range(3)]
    tcp = [_free_port(socket.SOCK_STREAM) for _ in range(3)]
    from node.primitives import SecretKey

    seed_id = SecretKey.from_seed((1).to_bytes(32, "big")).peer_id.hex()
    members = []
    for index in (1, 2, 3):
        command = [
            sys.executable, __file__, "--role", role, "--index", str(index),
            "--port", str(udp[index - 1]), "--seed", f"{seed_id}@127.0.0.1:{udp[0]}",
            "--tcp-ports", *map(str, tcp),
        ]  # fmt: skip
        if data is not None:
            command += ["--data-dir", str(data / f"m{index}")]
        log = logs / f"{role}{'-durable' if data else ''}-{index}.log"
        if LOGS is not None:
            command += ["--log-file", str(log)]
        members.append(Member(command, log))
    return members


def run(role: str, args: argparse.Namespace, data: Path | None) -> dict[str, Any]:
    """Throughput then read-your-write on three fresh members of ``role``."""
    with tempfile.TemporaryDirectory(prefix="collections-bench-logs-") as tmp:
        members = _start_members(role, data, LOGS or Path(tmp))
        try:
            return _measure(members, role, args)
        finally:
            for member in members:
                member.kill()


def _measure(members: list[Member], role: str, args: argparse.Namespace) -> dict[str, Any]:
    """Throughput, then read-your-write from one follower to the other."""
    _wait(lambda: all("online" in m.lines for m in members), 60, f"{role} members online")
    spread = [args.writers // 3 + (i < args.writers % 3) for i in range(3)]
    start = time.time() + 0.5
    marks = [
        m.send(f"load {start} {args.seconds} {n}") for m, n in zip(members, spread, strict=True)
    ]
    loads = [m.answer("load", k, 60 + args.seconds) for m, k in zip(members, marks, strict=True)]
    latencies = [x for load in loads for x in load["latencies"]]
    result: dict[str, Any] = {
        "ops": sum(load["count"] for load in loads) / max(load["elapsed"] for load in loads),
        "insert": _percentiles(latencies),
        "failures": sum(load["failures"] for load in loads),
    }

    roles = [m.answer("role", m.send("role"), 10)["role"] for m in members]
    followers = [m for m, r in zip(members, roles, strict=True) if r == "follower"]
    if len(followers) < 2:
        raise SystemExit(f"{role}: expected two followers, roles are {roles}")
    writer, watcher = followers[0], followers[1]
    watching = watcher.send(f"watch {args.samples}")
    watcher.answer("watching", watching, 10)
    wrote = writer.answer("wrote", writer.send(f"write {args.samples}"), 120)
    seen = watcher.answer("seen", watching, 30)["at"]
    result["same"] = _percentiles(
        [r - s for s, r in zip(wrote["start"], wrote["returned"], strict=True)]
    )
    result["other"] = _percentiles([b - s for s, b in zip(wrote["start"], seen, strict=True)])
    result["misses"] = wrote["misses"]
    return result


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0] * 1000:7.2f} {pair[1] * 1000:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput run length")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers in all")
    parser.add_argument("--samples", type=int, default=200, help="read-your-write inserts")
    parser.add_argument("--role", choices=["mosaik", "pysyncobj"], help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    parser.add_argument("--tcp-ports", type=int, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds <= 0 or args.writers < 3 or args.samples < 2:
        parser.error("--seconds must be positive, --writers at least 3, --samples at least 2")
    if args.log_file:
        import logging

        logging.basicConfig(
            filename=args.log_file, level=logging.INFO, format="%(created).3f %(name)s %(message)s"
        )
        logging.getLogger("quic").setLevel(logging.WARNING)
    if args.role == "mosaik":
        asyncio.run(_mosaik_member(args))
        return
    if args.role == "pysyncobj":
        _pysyncobj_member(args)
        return

    print(
        f"Map on 3 nodes on loopback: {args.writers} writers over the 3 nodes for "
        f"{args.seconds:g} s; read-your-write: {args.samples} inserts one after another on a "
        "follower"
    )
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="collections-bench-") as tmp:
        rows.append(("mosaik durable (SQLite, fsync)", run("mosaik", args, Path(tmp))))
    rows.append(("mosaik in-memory", run("mosaik", args, None)))
    try:
        import pysyncobj  # noqa: F401

        rows.append(("PySyncObj ReplDict defaults", run("pysyncobj", args, None)))
    except ImportError:
        print("PySyncObj not installed: pip install -e .[bench]")
    print(
        f"{'':32} {'inserts/s':>10} {'insert p50/p99 ms':>17} {'same node p50/p99':>17} "
        f"{'other node p50/p99':>18}"
    )
    for name, row in rows:
        print(
            f"{name:32} {row['ops']:10.0f} {_ms(row['insert']):>17} {_ms(row['same']):>17} "
            f"{_ms(row['other']):>18}"
        )
        if row["misses"] or row["failures"]:
            print(
                f"  {name}: {row['misses']} local reads missed the write just returned, "
                f"{row['failures']} inserts failed"
            )
    if len(rows) == 3:
        peer = rows[2][1]
        for name, row in rows[:2]:
            print(
                f"{name} / PySyncObj: inserts/s {row['ops'] / peer['ops']:.2f}x, "
                f"other-node visibility p50 {row['other'][0] / peer['other'][0]:.2f}x, "
                f"same-node p50 {row['same'][0] / peer['same'][0]:.2f}x (latency: lower is better)"
            )


if __name__ == "__main__":
    main()
