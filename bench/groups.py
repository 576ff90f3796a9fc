"""Raft groups on loopback: throughput, commit latency and failover, beside PySyncObj.

Three members, each in its own process, on this machine, in one run:
- throughput: 16 concurrent clients on the leader run ``execute(Increment())`` (a small
  command) for ``--seconds``; committed commands/s and p50/p99 commit latency (call to
  applied), with the durable SQLite log (fsync per batch) and with the in-memory log;
- PySyncObj (pip install -e .[bench]) with its default settings: 16 client threads on its
  leader calling a ``@replicated`` increment with ``sync=True`` (it keeps no durable journal);
- failover: every member executes increments in a loop; the leader is SIGKILLed and the time
  until the next commit on a survivor is measured, ``--trials`` times (the killed member is
  restarted from its data directory between trials). Default group timing. The members use a
  3 s QUIC idle timeout (default 30 s): peers notice a killed process's connections are dead
  only at that timeout, and discovery takes a restarted peer's new link only after its old one
  is gone, so with the default each trial would wait half a minute for the restarted member.

    .venv/bin/python bench/groups.py [--seconds 5] [--clients 16] [--trials 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NETWORK = "groups-bench"
LOGS = Path(os.environ["GROUPS_BENCH_LOGS"]) if os.environ.get("GROUPS_BENCH_LOGS") else None
"""A directory for the members' logs (at INFO), to see what happened in a slow trial."""


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


# -- member processes -----------------------------------------------------------------------


async def _mosaik_member(args: argparse.Namespace) -> None:
    from node.demo.counter import Counter, Increment
    from node.groups import ConsensusConfig, GroupError, MemoryStorage
    from node.network import Network
    from node.primitives import SecretKey
    from node.transport import TransportConfig

    key = SecretKey.from_seed(args.index.to_bytes(32, "big"))
    async with Network.create(
        NETWORK,
        secret_key=key,
        bind=f"127.0.0.1:{args.port}",
        bootstrap=[args.seed] if args.index != 1 else [],
        data_dir=args.data_dir,
        transport=TransportConfig(idle_timeout=3.0, keepalive_interval=1.0),
    ) as net:
        group = await net.groups.join(
            "bench",
            state_machine=Counter(),
            storage=MemoryStorage() if args.memory else None,
            bootstrap_expect=3,
            consensus=ConsensusConfig(snapshot_every=50_000),
        )
        print("ready", flush=True)
        await group.when.online()
        print("online", flush=True)
        if args.mode == "failover":
            await _failover_client(group, GroupError, Increment)
            return
        while not (group.leader and len(group.members.voters) == 3):
            await group.when.leader_changed()
        if not group.is_leader:
            await asyncio.Event().wait()
        await asyncio.sleep(0.5)
        latencies: list[float] = []
        stop = time.perf_counter() + args.seconds

        async def client() -> None:
            while (started := time.perf_counter()) < stop:
                await group.execute(Increment())
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.clients)))
        elapsed = time.perf_counter() - began
        p50, p99 = _percentiles(latencies)
        result = {"ops": len(latencies) / elapsed, "p50": p50, "p99": p99}
        print("result " + json.dumps(result), flush=True)
        await asyncio.Event().wait()


async def _failover_client(group: Any, errors: type[Exception], increment: Any) -> None:
    async def watch_role() -> None:
        while True:
            print(f"role {'leader' if group.is_leader else 'follower'}", flush=True)
            await group.when.leader_changed()

    watcher = asyncio.ensure_future(watch_role())
    try:
        while True:
            submitted = time.time()
            try:
                await group.execute(increment())
                print(f"commit {submitted:.6f} {time.time():.6f}", flush=True)
            except errors:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.005)
    finally:
        watcher.cancel()


def _pysyncobj_member(args: argparse.Namespace) -> None:
    from pysyncobj import SyncObj, replicated  # type: ignore[import-not-found]

    class Counter(SyncObj):  # type: ignore[misc]
        def __init__(self, address: str, partners: list[str]) -> None:
            super().__init__(address, partners)
            self._value = 0

        @replicated  # type: ignore[misc]
        def inc(self) -> int:
            self._value += 1
            return self._value

    ports = args.tcp_ports
    me = f"127.0.0.1:{ports[args.index - 1]}"
    partners = [f"127.0.0.1:{p}" for p in ports if f"127.0.0.1:{p}" != me]
    counter = Counter(me, partners)
    print("ready", flush=True)
    while not (counter._isReady() and counter._getLeader() is not None):
        time.sleep(0.05)
    if not counter._isLeader():
        while True:
            time.sleep(1)
    time.sleep(0.5)
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + args.seconds

    def client() -> None:
        while (started := time.perf_counter()) < stop:
            counter.inc(sync=True, timeout=10)
            with lock:
                latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    p50, p99 = _percentiles(latencies)
    result = {"ops": len(latencies) / elapsed, "p50": p50, "p99": p99}
    print("result " + json.dumps(result), flush=True)
    while True:
        time.sleep(1)


# -- the coordinator ------------------------------------------------------------------------


class Proc:
    """One member process and the lines it printed, each with the time it arrived."""

    def __init__(self, command: list[str], log: Path | None) -> None:
        self.command = command
        self.log = log
        self.lines: list[tuple[float, str]] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.lines = []
        stderr = self.log.open("a") if self.log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        stdout = self.process.stdout
        assert stdout is not None

        def read() -> None:
            for line in stdout:
                self.lines.append((time.time(), line.strip()))

        threading.Thread(target=read, daemon=True).start()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def last(self, prefix: str) -> str | None:
        found = [line for _, line in list(self.lines) if line.startswith(prefix)]
        return found[-1] if found else None


def _wait(condition: Any, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}")


def _members(role: str, extra: list[str], data: Path | None) -> list[Proc]:
    udp = [_free_port(socket.SOCK_DGRAM) for _ in range(3)]
    tcp = [_free_port(socket.SOCK_STREAM) for _ in range(3)]
    from node.primitives import SecretKey

    seed_id = SecretKey.from_seed((1).to_bytes(32, "big")).peer_id.hex()
    procs = []
    for index in (1, 2, 3):
        command = [
            sys.executable, __file__, "--role", role, "--index", str(index),
            "--port", str(udp[index - 1]), "--seed", f"{seed_id}@127.0.0.1:{udp[0]}",
            "--tcp-ports", *map(str, tcp), *extra,
        ]  # fmt: skip
        if data is not None:
            command += ["--data-dir", str(data / f"m{index}")]
        log = LOGS / f"{role}-{index}.log" if LOGS is not None else None
        if log is not None:
            command += ["--log-file", str(log)]
        procs.append(Proc(command, log))
    return procs


def throughput(
    role: str, args: argparse.Namespace, extra: list[str], data: Path | None
) -> dict[str, float]:
    load = ["--seconds", str(args.seconds), "--clients", str(args.clients)]
    procs = _members(role, [*extra, *load], data)
    try:
        for proc in procs:
            proc.start()
        _wait(lambda: any(p.last("result") for p in procs), 60 + args.seconds, f"{role} result")
        line = next(p.last("result") for p in procs if p.last("result"))
        assert line is not None
        return dict(json.loads(line.split(" ", 1)[1]))
    finally:
        for proc in procs:
            proc.kill()


def _commits_after(procs: list[Proc], moment: float) -> list[float]:
    """When each command submitted after ``moment`` was committed and applied, as printed by
    ``procs`` (what was submitted before may still commit through the old leader's messages)."""
    return [
        float(line.split()[2])
        for proc in procs
        for _, line in list(proc.lines)
        if line.startswith("commit ") and float(line.split()[1]) > moment
    ]


def failover(args: argparse.Namespace, data: Path) -> list[float]:
    procs = _members("mosaik", ["--mode", "failover", "--seconds", "0", "--clients", "0"], data)
    for proc in procs:
        proc.start()
    times: list[float] = []
    try:
        for _ in range(args.trials):
            _wait(lambda: all(p.last("online") for p in procs), 60, "members online")
            _wait(lambda: sum(p.last("role") == "role leader" for p in procs) == 1, 30, "a leader")
            now = time.time()
            _wait(
                lambda now=now: all(_commits_after([p], now) for p in procs),
                30,
                "commits on every member",
            )
            leader = next(p for p in procs if p.last("role") == "role leader")
            killed_at = time.time()
            leader.kill()
            survivors = [p for p in procs if p is not leader]
            _wait(
                lambda s=survivors, k=killed_at: _commits_after(s, k), 60, "a commit after the kill"
            )
            times.append(min(_commits_after(survivors, killed_at)) - killed_at)
            print(f"  trial {len(times)}: {times[-1]:.3f} s", flush=True)
            leader.start()
            time.sleep(1.0)
    finally:
        for proc in procs:
            proc.kill()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--role", choices=["mosaik", "pysyncobj"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="throughput", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    parser.add_argument("--tcp-ports", type=int, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.log_file:
        import logging

        logging.basicConfig(
            filename=args.log_file,
            level=logging.INFO,
            format="%(created).3f %(name)s %(message)s",
        )
        logging.getLogger("quic").setLevel(logging.WARNING)
    if args.role == "mosaik":
        try:
            asyncio.run(_mosaik_member(args))
        except KeyboardInterrupt:
            pass
        return
    if args.role == "pysyncobj":
        _pysyncobj_member(args)
        return

    print(
        f"3 members on loopback, {args.clients} concurrent clients on the leader, "
        f"{args.seconds:g} s each"
    )
    with tempfile.TemporaryDirectory(prefix="groups-bench-") as tmp:
        data = Path(tmp)
        durable = throughput("mosaik", args, [], data / "durable")
        memory = throughput("mosaik", args, ["--memory"], None)
        rows = [("mosaik durable (SQLite, fsync)", durable), ("mosaik in-memory", memory)]
        try:
            import pysyncobj  # type: ignore[import-not-found]  # noqa: F401

            peer = throughput("pysyncobj", args, [], None)
            rows.append(("PySyncObj 0.3 defaults (no fsync)", peer))
        except ImportError:
            peer = None
            print("PySyncObj not installed: pip install -e .[bench]")
        print(f"{'':36} {'commands/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
        for name, row in rows:
            print(f"{name:36} {row['ops']:11.0f} {row['p50'] * 1000:8.2f} {row['p99'] * 1000:8.2f}")
        if peer is not None:
            ratio = durable["ops"] / peer["ops"]
            print(f"durable / PySyncObj throughput: {ratio:.2f}x (goal >= 2x)")
        print(f"failover (leader SIGKILL -> next commit), {args.trials} trials, default timing:")
        times = failover(args, data / "failover")
        print(
            f"failover p50 {statistics.median(times):.3f} s, max {max(times):.3f} s "
            "(goal p50 <= 1.5 s)"
        )


if __name__ == "__main__":
    main()
