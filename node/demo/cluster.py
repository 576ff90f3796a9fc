"""``mosaik demo``: a local cluster of real node processes on loopback.

The first node is the seed; the others get only its address. The demo waits until every node
has discovered every other, prints what each node reports on its admin endpoint, shows the
attested sensor stream refusing a rogue node, runs a replicated counter on a 3-member Raft
group and SIGKILLs its leader to show a new leader and no lost increment, then stops the rest
with SIGTERM and checks they exit cleanly. Every node runs ``node.demo.roles:run`` as its app.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from attestation import MeasurementRecord, Policy, SimulatedPlatform
from node import MosaikError, SecretKey, SocketAddr
from node.admin import fetch_status
from node.demo.roles import DemoAttestation
from node.transport import codes

# The demo image's MRTD, and a rogue build's: stand-ins for values `mosaik measure` computes.
GOOD_MRTD = bytes.fromhex("a1" * 48)
ROGUE_MRTD = bytes.fromhex("6f" * 48)

_READY = re.compile(r"node ready: peer_id=(\w+) address=(\S+) admin=(\S+)")


@dataclass
class _Proc:
    name: str
    process: subprocess.Popen[str]
    peer_id: str = ""
    address: str = ""
    admin: SocketAddr | None = None


def _start(name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> _Proc:
    command = [sys.executable, "-m", "node", "--log-level", "info", "node", "run", *args]
    command += ["--app", "node.demo.roles:run"]
    stderr = (log_dir / f"{name}.log").open("w")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=os.environ | env
    )
    return _Proc(name, process)


def _wait_ready(proc: _Proc, deadline: float) -> None:
    assert proc.process.stdout is not None
    while time.monotonic() < deadline:
        line = proc.process.stdout.readline()
        if not line:
            raise MosaikError(f"{proc.name} exited early with code {proc.process.wait()}")
        match = _READY.search(line)
        if match:
            proc.peer_id, proc.address = match.group(1), match.group(2)
            proc.admin = SocketAddr.parse(match.group(3))
            return
    raise MosaikError(f"{proc.name} did not become ready in time")


def _status(proc: _Proc) -> dict[str, Any]:
    assert proc.admin is not None
    return fetch_status(proc.admin)


def _attestation(workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """One SIMULATED TDX platform for all nodes, and a policy that admits only GOOD_MRTD.

    Returns the environments of a good node and of the rogue (``node.demo.roles`` reads them).
    """
    tdx_dir = workdir / "simulated-tdx"
    SimulatedPlatform.open(tdx_dir)  # created once here, so the nodes share its root
    policy = workdir / "policy.json"
    record = MeasurementRecord.of("mosaik-demo-image", mrtd=GOOD_MRTD)
    policy.write_text(Policy(measurements=(record,)).to_json())
    good = DemoAttestation(tdx_dir, GOOD_MRTD, policy)
    rogue = DemoAttestation(tdx_dir, ROGUE_MRTD, policy)
    return good.env(), rogue.env()


def _show_sensor_rates(procs: list[_Proc], names: dict[str, str], deadline: float) -> None:
    """node-0 produces sensor readings to consumers whose TDX ticket passes its policy."""
    monitors = [p for p in procs[1:] if p.name != "rogue"]
    rogue = next(p for p in procs if p.name == "rogue")
    while time.monotonic() < deadline:
        if (
            all(_status(p)["demo"]["readings_received"] > 100 for p in monitors)
            and _status(rogue)["demo"]["refused_by"]
        ):
            break
        time.sleep(0.2)
    else:
        raise MosaikError("the monitors received no sensor readings in time")
    time.sleep(1.0)
    sent = _status(procs[0])["demo"]["readings_sent"]
    click.echo(f"\nsensor stream: {names[procs[0].peer_id]} produced {sent} readings so far")
    for proc in monitors:
        demo = _status(proc)["demo"]
        click.echo(
            f"  {proc.name} (attested, MRTD in policy) consumed {demo['readings_received']} "
            f"({demo['receive_rate_per_s']:.0f}/s)"
        )
    demo = _status(rogue)["demo"]
    for refusal in demo["refused_by"]:
        who = names.get(refusal["peer_id"], refusal["peer_id"][:10])
        click.echo(
            f"  rogue (SIMULATED quote with MRTD {ROGUE_MRTD.hex()[:12]}..., not in the policy) "
            f"refused by {who}: {codes.describe(refusal['code'])}, "
            f"{str(refusal['error']).split('tickets rejected: ')[-1][:120]}"
        )
    if demo["readings_received"]:
        raise MosaikError("the rogue node received readings despite its measurements")


def _counter(proc: _Proc) -> dict[str, Any] | None:
    counter: dict[str, Any] | None = _status(proc).get("counter")
    return counter


def _wait_counter_leader(
    members: list[_Proc], deadline: float, above: int = 0
) -> tuple[_Proc, dict[str, Any]]:
    """Wait until every member names the same leader and its value passed ``above``."""
    while time.monotonic() < deadline:
        counters = {p.name: _counter(p) for p in members}
        leaders = {c["leader"] for c in counters.values() if c is not None}
        leader = next((p for p in members if {p.peer_id} == leaders), None)
        counter = counters[leader.name] if leader is not None else None
        if leader is not None and counter is not None and counter["value"] > above:
            return leader, counter
        time.sleep(0.1)
    raise MosaikError("the counter group elected no leader every member agrees on in time")


def _show_rogue_refused(
    rogue: _Proc, counter: dict[str, Any], names: dict[str, str], deadline: float
) -> None:
    """The rogue runs the counter too; the members refuse its handshake (ticket policy)."""
    if rogue.peer_id in counter["voters"] + counter["learners"]:
        raise MosaikError("the rogue node was admitted to the counter group")
    while not (own := _counter(rogue) or {}).get("refused_by"):
        if time.monotonic() > deadline:
            raise MosaikError("no member refused the rogue node's counter group handshake")
        time.sleep(0.1)
    who, reason = next(iter(own["refused_by"].items()))
    code, _, detail = reason.partition(": tickets rejected: ")
    click.echo(
        f"  rogue runs the counter too and is refused by {names.get(who, who[:10])}: {code}, "
        f"{detail[:60]}...; its increments acknowledged: {own.get('acknowledged')}"
    )


def _show_counter_failover(
    procs: list[_Proc], names: dict[str, str], workdir: Path, time_factor: float
) -> _Proc:
    """Kill the counter group's leader and show that its successor lost no increment.

    The group requires the demo's TDX ticket policy, so the rogue node, which runs the counter
    too, is never admitted. Every increment a member saw acknowledged (committed and applied)
    is in the value, so the new leader's value must be at least the acknowledged increments of
    all members, the dead leader's counted as last reported. Returns the killed process.
    """
    members = [p for p in procs if p.name != "rogue"]
    deadline = time.monotonic() + 30 * time_factor
    leader, counter = _wait_counter_leader(members, deadline, 5)
    click.echo(
        f"\ncounter group (Raft, 3 members, SQLite logs in {workdir.name}/): leader "
        f"{leader.name} in term {counter['term']}, value {counter['value']}"
    )
    for proc in members:
        own = _counter(proc) or {}
        click.echo(
            f"  {proc.name} {own.get('role', '?'):<8} applied index {own.get('applied_index')} "
            f"value {own.get('value')} own increments acknowledged {own.get('acknowledged')}"
        )
    _show_rogue_refused(next(p for p in procs if p.name == "rogue"), counter, names, deadline)
    acknowledged_by_leader = (_counter(leader) or {}).get("acknowledged", 0)
    leader.process.kill()
    killed_at = time.monotonic()
    leader.process.wait()
    click.echo(f"killed the leader {leader.name} (SIGKILL)")
    survivors = [p for p in members if p is not leader]
    successor, counter = _wait_counter_leader(
        survivors, time.monotonic() + 30 * time_factor, counter["value"]
    )
    elected_after = time.monotonic() - killed_at
    acknowledged = acknowledged_by_leader + sum(
        (_counter(p) or {}).get("acknowledged", 0) for p in survivors
    )
    value = (_counter(successor) or {}).get("value", 0)
    click.echo(
        f"  {successor.name} leads in term {counter['term']}, committing again "
        f"{elected_after:.2f} s after the kill"
    )
    if value < acknowledged:
        raise MosaikError(f"the counter lost increments: value {value} < {acknowledged} acked")
    click.echo(
        f"  value {value} >= {acknowledged} increments acknowledged by all members: "
        "no committed increment was lost"
    )
    return leader


def run_demo(nodes: int = 3, time_factor: float = 1.0) -> int:
    """Run the demo; returns the process exit code."""
    with tempfile.TemporaryDirectory(prefix="mosaik-demo-") as tmp:
        workdir = Path(tmp)
        seed_key = workdir / "seed.key"
        SecretKey.generate().to_file(seed_key)
        procs: list[_Proc] = []
        try:
            return _drive(nodes, workdir, seed_key, procs, time_factor)
        except (MosaikError, click.ClickException) as exc:
            click.echo(f"demo failed: {exc}", err=True)
            for proc in procs:
                log = workdir / f"{proc.name}.log"
                if log.exists():
                    click.echo(f"--- {proc.name} log ---\n{log.read_text()[-2000:]}", err=True)
            return 1
        finally:
            for proc in procs:
                if proc.process.poll() is None:
                    proc.process.kill()
                    proc.process.wait()


def _drive(
    nodes: int, workdir: Path, seed_key: Path, procs: list[_Proc], time_factor: float
) -> int:
    deadline = time.monotonic() + 30 * time_factor
    common = ["--network", "mosaik-demo", "--bind", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"]
    good, rogue = _attestation(workdir)
    seed_args = [*common, "--secret-file", str(seed_key), "--tag", "seed", "--tag", "sensor"]
    seed_args += ["--data-dir", str(workdir / "node-0")]
    seed = _start("node-0", seed_args, workdir, good)
    procs.append(seed)
    _wait_ready(seed, deadline)
    click.echo(f"seed      node-0  {seed.peer_id}  quic {seed.address}  admin {seed.admin}")
    click.echo("          (every node carries a TDX ticket from a SIMULATED platform: no TDX here)")
    joining = [*common, "--bootstrap", f"{seed.peer_id}@{seed.address}", "--tag", "monitor"]
    for i in range(1, nodes):
        data_dir = ["--data-dir", str(workdir / f"node-{i}")]
        procs.append(_start(f"node-{i}", [*joining, *data_dir], workdir, good))
    procs.append(_start("rogue", joining, workdir, rogue))
    nodes += 1
    for proc in procs[1:]:
        _wait_ready(proc, deadline)
        click.echo(
            f"started   {proc.name}  {proc.peer_id}  quic {proc.address}  admin {proc.admin}"
        )

    names = {p.peer_id: p.name for p in procs}
    started = time.monotonic()
    while time.monotonic() < deadline:
        if all(len(_status(p)["catalog"]) == nodes - 1 for p in procs):
            break
        time.sleep(0.1)
    else:
        raise MosaikError("the nodes did not discover each other in time")
    click.echo(
        f"\nevery node discovered all {nodes - 1} others through the seed "
        f"in {time.monotonic() - started:.2f} s; catalogs (signed entries, gossiped):"
    )
    for proc in procs:
        status = _status(proc)
        entries = ", ".join(
            f"{names.get(e['peer_id'], e['peer_id'][:10])}@{e['addrs'][0] if e['addrs'] else '?'}"
            for e in status["catalog"]
        )
        click.echo(f"  {proc.name}: {entries}")
    click.echo("\nauthenticated connections (each peer id proven by its node key):")
    for proc in procs:
        conns = _status(proc)["connections"]
        peers = ", ".join(
            f"{names.get(c['peer_id'], c['peer_id'][:10])}"
            f"({'out' if c['dialer'] else 'in'} {c['alpn'].split('/')[2]})"
            for c in conns
        )
        click.echo(f"  {proc.name}: {peers}")

    _show_sensor_rates(procs, names, deadline)
    killed = _show_counter_failover(procs, names, workdir, time_factor)

    click.echo("\nstopping nodes with SIGTERM")
    running = [p for p in procs if p is not killed]
    for proc in running:
        proc.process.send_signal(signal.SIGTERM)
    failed = 0
    for proc in running:
        code = proc.process.wait(timeout=10 * time_factor)
        click.echo(f"  {proc.name} exited with {code}")
        failed += code != 0
    if failed:
        raise MosaikError(f"{failed} node(s) did not exit cleanly")
    click.echo("demo complete")
    return 0
