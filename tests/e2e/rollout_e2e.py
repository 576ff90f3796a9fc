"""End to end: roll mosaik out to three plain VMs under QEMU with the real playbook over SSH.

Run as root: ``python tests/e2e/rollout_e2e.py`` (``make e2e-rollout``). Steps:
1. build the ``plain-vm`` image (Debian trixie, sshd, python3, no mosaik), or reuse it from the
   cache when its recipe, lock and builder are unchanged; build two wheelhouses of the runtime
   (this tree, and a copy whose version is bumped) for the guests' CPython;
2. create a network namespace holding a bridge (10.214.N.1/24) and one tap per VM, and boot
   three VMs on it (TCG unless --accel kvm; root's SSH key as an SMBIOS credential, the
   address as ip= on the kernel command line);
3. ``mosaik deploy keys`` (two seeds), then ``mosaik deploy`` the inventory over SSH: every
   node must run as its own systemd service and list the other two in its catalog;
4. a second run must report changed=0;
5. a rolling upgrade (serial 1) to the bumped version: each node healthy before the next, at
   least two nodes answering throughout, every node on the new version at the end;
6. SIGKILL one VM: the other two purge it from their catalogs (peer TTL 20 s);
7. a rollout whose first node cannot become healthy stops there with a clear message, and the
   next node is left as it was.
When the runtime has ``mosaik node run --counter-group`` (the groups demo), every node also runs
a 3-member replicated counter: it must elect a leader and commit after the first rollout,
keep committing throughout the rolling upgrade (the health gate then also waits for the
restarted member to catch up) and after one VM is killed.
Everything runs inside the namespace; on exit (also on failure or Ctrl-C) every process in it
is killed and the namespace deleted: nothing on the machine's own interfaces is touched.
Deadlines scale with TIME_FACTOR. Without qemu-system-x86_64 the test prints why and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TIME_FACTOR = float(os.environ.get("TIME_FACTOR", "1"))
NETWORK = "e2e-rollout"
VMS = ("vm1", "vm2", "vm3")
GROUPS = {"vm1": ["seed", "matcher"], "vm2": ["seed", "sensor"], "vm3": ["sensor"]}
PEER_TTL = 20
PASSWORD = "e2e-rollout-vault-password"
CACHE = Path(os.environ.get("MOSAIK_E2E_CACHE", "~/.cache/mosaik-e2e")).expanduser()
GUEST_PYTHON = "3.13"
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[rollout-e2e {time.monotonic() - STARTED:6.0f}s] {message}", flush=True)


class Failed(Exception):
    """A check of the end-to-end test did not hold."""


def run(argv: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], text=True, check=False, **kwargs)


def must(argv: Sequence[str | Path], what: str) -> str:
    result = run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise Failed(f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}")
    return result.stdout


def wait(check: Callable[[], str | None], limit: float, what: str, every: float = 2) -> float:
    """Poll ``check`` (None when satisfied, else why not) until ``limit`` seconds pass."""
    began = time.monotonic()
    reason: str | None = "never checked"
    while time.monotonic() - began < limit * TIME_FACTOR:
        reason = check()
        if reason is None:
            return time.monotonic() - began
        time.sleep(every)
    raise Failed(f"{what}: not within {limit * TIME_FACTOR:.0f} s ({reason})")


# -- outside the namespace: inputs, network, cleanup -------------------------------------


def image_key() -> str:
    """Digest of what the plain-vm image is built from: recipe, lock, templates, builder."""
    digest = hashlib.sha256()
    sources = sorted((ROOT / "images").rglob("*"))
    for path in sources:
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(ROOT / "images")
            if relative.parts[0] in ("debian-trixie",):
                continue
            digest.update(f"{relative}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_image(cache: Path) -> tuple[Path, float]:
    """The plain-vm image from the cache, or built into it: (directory, seconds spent)."""
    out = cache / f"plain-vm-{image_key()}"
    if (out / "manifest.json").is_file():
        log(f"plain-vm image reused from {out}")
        return out, 0.0
    began = time.monotonic()
    log(f"building the plain-vm image into {out}")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    must([sys.executable, "-m", "images", "build", "plain-vm", "--out", partial], "image build")
    for stale in cache.glob("plain-vm-*"):
        if stale != partial:
            shutil.rmtree(stale, ignore_errors=True)
    partial.rename(out)
    return out, time.monotonic() - began


def bumped_source(work: Path) -> tuple[Path, str]:
    """A copy of the project tree whose runtime version is one post-release later."""
    from images.wheels import copy_source
    from node._version import __version__

    source = copy_source(ROOT, work / "source-next")
    newer = f"{__version__}.post1"
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace(f'version = "{__version__}"', f'version = "{newer}"', 1))
    version_file = source / "node/_version.py"
    version_file.write_text(f'__version__ = "{newer}"\n')
    return source, newer


def counter_group_supported() -> bool:
    """Whether this runtime's ``mosaik node run`` can run the replicated counter demo."""
    result = run([sys.executable, "-m", "node", "node", "run", "--help"], capture_output=True)
    return "--counter-group" in result.stdout


def build_wheelhouse(source: Path, out: Path) -> None:
    must(
        [
            sys.executable,
            "-m",
            "node.deploy",
            "wheelhouse",
            "--out",
            out,
            "--source",
            source,
            "--python",
            GUEST_PYTHON,
        ],
        f"wheelhouse of {source}",
    )


@dataclass(frozen=True)
class Net:
    namespace: str
    prefix: str

    def address(self, index: int) -> str:
        return f"{self.prefix}.{11 + index}"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"


def create_network(net: Net) -> None:
    ip = ["ip", "-n", net.namespace]
    must(["ip", "netns", "add", net.namespace], "creating the network namespace")
    must([*ip, "link", "set", "lo", "up"], "lo up")
    must([*ip, "link", "add", "br0", "type", "bridge"], "bridge")
    must([*ip, "addr", "add", f"{net.gateway}/24", "dev", "br0"], "bridge address")
    must([*ip, "link", "set", "br0", "up"], "bridge up")
    for index in range(len(VMS)):
        must([*ip, "tuntap", "add", "dev", f"tap{index}", "mode", "tap"], "tap")
        must([*ip, "link", "set", f"tap{index}", "master", "br0", "up"], "tap up")


def destroy_network(net: Net) -> None:
    """Kill every process left in the namespace (all ours), then delete it."""
    listed = run(["ip", "netns", "pids", net.namespace], capture_output=True)
    for pid in listed.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not run(["ip", "netns", "pids", net.namespace], capture_output=True).stdout.split():
            break
        time.sleep(0.2)
    run(["ip", "netns", "del", net.namespace], capture_output=True)


def outside(args: argparse.Namespace) -> int:
    if shutil.which("qemu-system-x86_64") is None:
        print("SKIPPED: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
        return 0
    if os.geteuid() != 0:
        log("FAILED: run as root (it builds the image and makes a network namespace and taps)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="mosaik-rollout-e2e-"))
    net = Net(f"mosaik-e2e-{os.getpid()}", args.subnet)
    timings: dict[str, float] = {}
    try:
        image, timings["image build"] = ensure_image(args.cache)
        began = time.monotonic()
        next_source, next_version = bumped_source(work)
        build_wheelhouse(ROOT, work / "wheelhouse-1")
        build_wheelhouse(next_source, work / "wheelhouse-2")
        timings["wheelhouses"] = time.monotonic() - began
        log(f"wheelhouses built ({timings['wheelhouses']:.0f} s); upgrade target {next_version}")
        create_network(net)
        log(f"namespace {net.namespace}: bridge {net.gateway}/24, taps tap0-tap{len(VMS) - 1}")
        inside = [
            "ip",
            "netns",
            "exec",
            net.namespace,
            sys.executable,
            __file__,
            "--inside",
            "--work",
            str(work),
            "--image",
            str(image),
            "--subnet",
            net.prefix,
            "--accel",
            args.accel,
            "--next-version",
            next_version,
            "--timings",
            json.dumps(timings),
        ]
        code = run(inside).returncode
        log(f"e2e-rollout took {time.monotonic() - STARTED:.0f} s in all")
        if code != 0:
            log(f"logs and serial consoles kept in {work}")
            args.keep = True
        return code
    except Failed as exc:
        log(f"FAILED: {exc}")
        print("0 passed, 1 failed")
        return 1
    finally:
        destroy_network(net)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")


# -- inside the namespace: VMs, rollout, checks ------------------------------------------


@dataclass
class Vm:
    name: str
    index: int
    address: str
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Sampler:
    """Polls every node's /status in the background: who answers, on which version."""

    vms: Sequence[Vm]
    samples: list[tuple[float, dict[str, str | None]]] = field(default_factory=list)
    counter: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            documents = {vm.name: status(vm, timeout=3) for vm in self.vms}
            now = time.monotonic()
            self.samples.append((now, {name: _version(d) for name, d in documents.items()}))
            values = [counter_value(d) for d in documents.values()]
            known = [v for v in values if v is not None]
            if known:
                self.counter.append((now, max(known)))
            self._stop.wait(1)


def _version(document: dict[str, Any] | None) -> str | None:
    return None if document is None else str(document.get("version"))


def counter_value(document: dict[str, Any] | None) -> int | None:
    """The replicated counter's value a node has applied (None: no counter there)."""
    counter = (document or {}).get("counter")
    value = counter.get("value") if isinstance(counter, dict) else None
    return value if isinstance(value, int) else None


def longest_stall(samples: Sequence[tuple[float, int]]) -> float:
    """The longest time the counter's value did not grow."""
    stall, since, last = 0.0, None, None
    for when, value in samples:
        if last is None or value > last:
            since, last = when, value
        assert since is not None
        stall = max(stall, when - since)
    return stall


def status(vm: Vm, timeout: float = 5) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://{vm.address}:9100/status", timeout=timeout) as reply:
            document = json.load(reply)
            return document if isinstance(document, dict) else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Inside:
    def __init__(self, args: argparse.Namespace) -> None:
        self.work = Path(args.work)
        self.image = Path(args.image)
        self.accel = args.accel
        self.next_version = args.next_version
        self.counter = args.counter
        self.timings: dict[str, float] = json.loads(args.timings)
        self.vms = [Vm(name, i, f"{args.subnet}.{11 + i}") for i, name in enumerate(VMS)]
        self.logs = self.work / "logs"
        self.logs.mkdir(exist_ok=True)
        self.key = self.work / "id_ed25519"
        self.inventory = self.work / "inventory" / "hosts.yml"
        self.peers: dict[str, str] = {}
        self.runs = 0

    # -- VMs

    def boot(self) -> None:
        must(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rollout-e2e", "-f", self.key],
            "ssh-keygen",
        )
        public = (self.key.with_suffix(".pub")).read_text().strip()
        manifest = json.loads((self.image / "manifest.json").read_text())
        cpu = "host" if self.accel == "kvm" else "max"
        for vm in self.vms:
            cmdline = f"{manifest['cmdline']} ip={vm.address}:::255.255.255.0:{vm.name}:eth0:none"
            argv = [
                "qemu-system-x86_64",
                "-machine",
                "q35",
                "-accel",
                self.accel,
                "-cpu",
                cpu,
                "-m",
                "1G",
                "-smp",
                "1",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
                "-serial",
                f"file:{self.logs / (vm.name + '.serial')}",
                "-bios",
                self.image / "OVMF.fd",
                "-kernel",
                self.image / "vmlinuz",
                "-initrd",
                self.image / "initrd.img",
                "-append",
                cmdline,
                "-netdev",
                f"tap,id=net0,ifname=tap{vm.index},script=no,downscript=no",
                "-device",
                f"virtio-net-pci,netdev=net0,mac=52:54:00:d6:00:{11 + vm.index:02x}",
                "-smbios",
                f"type=11,value=io.systemd.credential:ssh.authorized_keys.root={public}",
            ]
            with (self.logs / f"{vm.name}.qemu").open("wb") as output:
                vm.process = subprocess.Popen(
                    [str(a) for a in argv], stdout=output, stderr=subprocess.STDOUT
                )
        began = time.monotonic()
        for vm in self.vms:
            wait(lambda vm=vm: self._ssh_ready(vm), 900, f"SSH on {vm.name}", every=3)
        self.timings["boot to SSH (3 VMs)"] = time.monotonic() - began
        log(f"3 VMs answer SSH after {self.timings['boot to SSH (3 VMs)']:.0f} s ({self.accel})")

    def _ssh_ready(self, vm: Vm) -> str | None:
        if vm.process is not None and vm.process.poll() is not None:
            raise Failed(f"QEMU of {vm.name} exited with {vm.process.returncode}")
        result = self.ssh(vm, "true", timeout=20)
        return None if result.returncode == 0 else f"ssh: {result.stderr.strip()[-200:]}"

    def ssh(self, vm: Vm, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [
            "ssh",
            "-i",
            self.key,
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            f"root@{vm.address}",
            command,
        ]
        try:
            return run(argv, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 255, "", "timed out")

    # -- rollout

    def write_inventory(self) -> None:
        import yaml

        ssh_args = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        groups: dict[str, Any] = {}
        for vm in self.vms:
            for group in GROUPS[vm.name]:
                groups.setdefault(group, {"hosts": {}})["hosts"][vm.name] = None
        document = {
            "all": {
                "vars": {
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_ssh_common_args": ssh_args,
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "mosaik_node_network": NETWORK,
                    "mosaik_node_metrics_addr": "0.0.0.0:9100",
                    "mosaik_node_peer_ttl": PEER_TTL,
                    "mosaik_node_health_timeout": 600,
                    "mosaik_node_run_args": ["--counter-group"] if self.counter else [],
                },
                "children": {
                    "mosaik_nodes": {
                        "hosts": {vm.name: {"ansible_host": vm.address} for vm in self.vms},
                    },
                    **groups,
                },
            }
        }
        self.inventory.parent.mkdir(parents=True, exist_ok=True)
        self.inventory.write_text(yaml.safe_dump(document, sort_keys=True))

    def deploy(self, what: str, *args: str, expect: int = 0) -> str:
        self.runs += 1
        path = self.logs / f"ansible-{self.runs}.log"
        began = time.monotonic()
        env = dict(
            os.environ, MOSAIK_VAULT_PASSWORD=PASSWORD, ANSIBLE_NOCOLOR="1", ANSIBLE_TIMEOUT="60"
        )
        argv = [sys.executable, "-m", "node.deploy", *args]
        with path.open("w") as output:
            code = run(argv, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT).returncode
        text = path.read_text()
        self.timings[what] = time.monotonic() - began
        if code != expect:
            raise Failed(f"{what}: exit {code}, expected {expect}; {path}:\n{text[-4000:]}")
        log(f"{what}: exit {code} in {self.timings[what]:.0f} s ({path.name})")
        return text

    def keys(self) -> None:
        self.deploy("keys", "keys", "--inventory", str(self.inventory))
        import yaml

        peers_file = self.inventory.parent / "group_vars/all/mosaik_peers.yml"
        self.peers = yaml.safe_load(peers_file.read_text())["mosaik_node_peers"]

    def rollout(self, what: str, wheelhouse: str, *extra: str, expect: int = 0) -> str:
        return self.deploy(
            what,
            str(self.inventory),
            "--wheelhouse",
            str(self.work / wheelhouse),
            *extra,
            expect=expect,
        )

    # -- checks

    def catalog_lists(self, vm: Vm, others: Sequence[Vm]) -> str | None:
        document = status(vm)
        if document is None:
            return f"{vm.name} does not answer /status"
        listed = {entry.get("peer_id") for entry in document.get("catalog", [])}
        missing = [o.name for o in others if self.peers[o.name] not in listed]
        return f"{vm.name}'s catalog lacks {', '.join(missing)}" if missing else None

    def check_services(self) -> None:
        for vm in self.vms:
            result = self.ssh(
                vm,
                "systemctl is-active mosaik-node; systemctl show -p User -p MainPID "
                "mosaik-node; stat -c '%a %U' /etc/mosaik/node.key",
            )
            lines = result.stdout.split()
            if result.returncode != 0 or lines[0] != "active" or "User=mosaik" not in lines:
                raise Failed(f"{vm.name}: mosaik-node is not an active service: {result.stdout}")
            if lines[-2:] != ["600", "mosaik"]:
                raise Failed(f"{vm.name}: key file is {lines[-2:]}, expected 600 mosaik")
            document = status(vm)
            if document is None or document["peer_id"] != self.peers[vm.name]:
                raise Failed(f"{vm.name} does not run with its vault key")
        log("every VM runs mosaik-node.service as user mosaik with its vault key (0600)")

    def check_cluster(self, vms: Sequence[Vm], what: str) -> None:
        def formed() -> str | None:
            for vm in vms:
                reason = self.catalog_lists(vm, [o for o in vms if o is not vm])
                if reason:
                    return reason
            return None

        took = wait(formed, 300, what)
        self.timings[what] = took
        log(f"{what}: every node lists the other {len(vms) - 1} ({took:.0f} s)")

    def check_group_commits(self, vms: Sequence[Vm], what: str, increments: int = 3) -> None:
        """The counter group has one leader every member agrees on, and its value grows."""
        if not self.counter:
            return

        def agreed() -> str | None:
            leaders = set()
            for vm in vms:
                counter = (status(vm) or {}).get("counter")
                if not isinstance(counter, dict) or counter.get("leader") is None:
                    return f"{vm.name} knows no counter leader"
                leaders.add(counter["leader"])
            return None if len(leaders) == 1 else f"members disagree on the leader: {leaders}"

        wait(agreed, 300, f"{what}: one counter leader")
        start = max(counter_value(status(vm)) or 0 for vm in vms)

        def grew() -> str | None:
            now = max(counter_value(status(vm)) or 0 for vm in vms)
            return None if now >= start + increments else f"value {now}, from {start}"

        took = wait(grew, 120, f"{what}: the counter commits")
        log(f"{what}: the counter group has a leader and committed {increments} ({took:.0f} s)")

    def check_idempotent(self, output: str) -> None:
        changed = dict(re.findall(r"^(vm\d)\s+:.*?changed=(\d+)", output, re.MULTILINE))
        if set(changed) != set(VMS) or any(int(c) for c in changed.values()):
            raise Failed(f"second run is not idempotent: changed per host {changed}")
        log("second run: changed=0 on every host")

    def rolling_upgrade(self) -> None:
        with Sampler(self.vms) as sampler:
            output = self.rollout(
                "rolling upgrade (serial 1)", "wheelhouse-2", "-e", "mosaik_node_serial=1"
            )
        batches = output.count("PLAY [Roll out mosaik nodes, a batch at a time")
        if batches != len(VMS):
            raise Failed(f"expected {len(VMS)} batches of one host, saw {batches}")
        for vm in self.vms:
            document = status(vm)
            if document is None or document.get("version") != self.next_version:
                raise Failed(f"{vm.name} is not on {self.next_version} after the upgrade")
        upgraded: dict[str, float] = {}
        worst = len(VMS)
        for when, round_ in sampler.samples:
            worst = min(worst, sum(1 for v in round_.values() if v is not None))
            for name, version in round_.items():
                if version == self.next_version:
                    upgraded.setdefault(name, when)
        order = sorted(upgraded, key=upgraded.__getitem__)
        if order != list(VMS):
            raise Failed(f"nodes took the new version in the order {order}, not one by one")
        if worst < len(VMS) - 1:
            raise Failed(f"only {worst} node(s) answered at some point of the rolling upgrade")
        log(
            f"rolling upgrade: one node at a time ({' -> '.join(order)}), at least {worst} of "
            f"{len(VMS)} answering throughout ({len(sampler.samples)} samples), all on "
            f"{self.next_version}"
        )
        if self.counter:
            stall = longest_stall(sampler.counter)
            first, last = sampler.counter[0][1], sampler.counter[-1][1]
            if last <= first or stall > 60 * TIME_FACTOR:
                raise Failed(f"counter went {first} -> {last}, longest stall {stall:.0f} s")
            log(f"the counter kept committing: {first} -> {last}, longest stall {stall:.0f} s")

    def kill_and_purge(self) -> None:
        victim, survivors = self.vms[2], self.vms[:2]
        assert victim.process is not None
        victim.process.kill()
        victim.process.wait()
        log(f"SIGKILLed the VM of {victim.name}")

        def purged() -> str | None:
            for vm in survivors:
                document = status(vm)
                if document is None:
                    return f"{vm.name} does not answer"
                listed = {entry.get("peer_id") for entry in document.get("catalog", [])}
                if self.peers[victim.name] in listed:
                    return f"{vm.name} still lists {victim.name}"
            return None

        took = wait(purged, PEER_TTL * 6, f"survivors purge {victim.name}")
        self.timings["purge after SIGKILL"] = took
        log(f"{', '.join(v.name for v in survivors)} purged {victim.name} after {took:.0f} s")
        self.check_cluster(survivors, "survivors still see each other")
        self.check_group_commits(survivors, "with one VM gone")

    def failed_health_stops_the_rollout(self) -> None:
        output = self.rollout(
            "rollout with a node that cannot get healthy",
            "wheelhouse-2",
            "--limit",
            "vm1,vm2",
            "-e",
            "mosaik_node_serial=1",
            "-e",
            "mosaik_node_network=e2e-elsewhere",
            "-e",
            "mosaik_node_health_timeout=30",
            expect=2,
        )
        if "The rollout stops here" not in output or "lacks 1 of 1 expected peer(s): vm2" not in (
            " ".join(output.split())
        ):
            raise Failed("the failed health check did not say what was missing")
        environment = self.ssh(self.vms[1], "cat /etc/mosaik/node.env").stdout
        if f'MOSAIK_NETWORK="{NETWORK}"' not in environment:
            raise Failed("vm2 was changed after vm1 failed its health check")
        log("a node that cannot rejoin stops the rollout with what it lacks; vm2 untouched")

    def main(self) -> int:
        try:
            if not self.counter:
                log("groups: this runtime has no `node run --counter-group`; group checks skipped")
            self.boot()
            self.write_inventory()
            self.keys()
            self.rollout(
                "first rollout (all at once)", "wheelhouse-1", "-e", "mosaik_node_serial=3"
            )
            self.check_services()
            self.check_cluster(self.vms, "cluster formed")
            self.check_group_commits(self.vms, "after the first rollout")
            self.check_idempotent(
                self.rollout("second run", "wheelhouse-1", "-e", "mosaik_node_serial=3")
            )
            self.rolling_upgrade()
            self.check_cluster(self.vms, "cluster after the upgrade")
            self.check_group_commits(self.vms, "after the upgrade")
            self.kill_and_purge()
            self.failed_health_stops_the_rollout()
        except Failed as exc:
            log(f"FAILED: {exc}")
            for vm in self.vms:
                serial = self.logs / f"{vm.name}.serial"
                tail = serial.read_text(errors="replace")[-1500:] if serial.exists() else ""
                log(f"serial console of {vm.name} (tail):\n{tail}")
            print("0 passed, 1 failed")
            return 1
        finally:
            for vm in self.vms:
                if vm.process is not None and vm.process.poll() is None:
                    vm.process.terminate()
                    try:
                        vm.process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        vm.process.kill()
        for what, seconds in self.timings.items():
            log(f"  {seconds:7.1f} s  {what}")
        log(f"PASSED: VMs and rollouts took {time.monotonic() - STARTED:.0f} s ({self.accel})")
        print("1 passed, 0 failed")
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accel", choices=("tcg", "kvm"), default="tcg")
    parser.add_argument("--cache", type=Path, default=CACHE, help="cache of the built image")
    parser.add_argument("--subnet", default="10.214.7", help="first three octets of the bridge")
    parser.add_argument("--keep", action="store_true", help="keep logs and serial consoles")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--next-version", help=argparse.SUPPRESS)
    parser.add_argument("--timings", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--counter", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return Inside(args).main()
    return outside(args)


if __name__ == "__main__":
    sys.exit(main())
