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
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.rollout_vms import (  # noqa: E402
    TIME_FACTOR,
    Failed,
    Net,
    Sampler,
    Vm,
    catalog,
    counter_value,
    flags,
    log,
    longest_stall,
    must,
    run,
    start_clock,
    started,
    wait,
)

NETWORK = "e2e-rollout"
VMS = ("vm1", "vm2", "vm3")
GROUPS = {"vm1": ["seed", "matcher"], "vm2": ["seed", "sensor"], "vm3": ["sensor"]}
PEER_TTL = 20
PASSWORD = "e2e-rollout-vault-password"
CACHE = Path(os.environ.get("MOSAIK_E2E_CACHE", "~/.cache/mosaik-e2e")).expanduser()
GUEST_PYTHON = "3.13"


# -- outside the namespace: inputs, network, cleanup -------------------------------------


def image_key() -> str:
    """Digest of what the plain-vm image is built from: recipe, lock, templates, builder."""
    digest = hashlib.sha256()
    sources = sorted((ROOT / "images").rglob("*"))
    for path in sources:
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(ROOT / "images")
            if relative.parts[0] == "debian-trixie":
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
    options = {"--out": out, "--source": source, "--python": GUEST_PYTHON}
    command = [sys.executable, "-m", "node.deploy", "wheelhouse", *flags(options)]
    must(command, f"wheelhouse of {source}")


def outside(args: argparse.Namespace) -> int:
    if shutil.which("qemu-system-x86_64") is None:
        print("SKIPPED: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
        return 0
    if os.geteuid() != 0:
        log("FAILED: run as root (it builds the image and makes a network namespace and taps)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="mosaik-rollout-e2e-"))
    net = Net(f"mosaik-e2e-{os.getpid()}", args.subnet, len(VMS))
    timings: dict[str, float] = {}
    try:
        image, timings["image build"] = ensure_image(args.cache)
        began = time.monotonic()
        next_source, next_version = bumped_source(work)
        build_wheelhouse(ROOT, work / "wheelhouse-1")
        build_wheelhouse(next_source, work / "wheelhouse-2")
        timings["wheelhouses"] = time.monotonic() - began
        log(f"wheelhouses built ({timings['wheelhouses']:.0f} s); upgrade target {next_version}")
        net.create()
        log(f"namespace {net.namespace}: bridge {net.gateway}/24, taps tap0-tap{len(VMS) - 1}")
        options = {
            "--work": work,
            "--image": image,
            "--subnet": net.prefix,
            "--accel": args.accel,
            "--next-version": next_version,
            "--timings": json.dumps(timings),
            "--t0": repr(started()),
        }
        inside = ["ip", "netns", "exec", net.namespace, sys.executable, __file__, "--inside"]
        inside += [*flags(options), *(["--counter"] if counter_group_supported() else [])]
        code = run(inside).returncode
        log(f"e2e-rollout took {time.monotonic() - started():.0f} s in all")
        if code != 0:
            log(f"logs and serial consoles kept in {work}")
            args.keep = True
        return code
    except Failed as exc:
        log(f"FAILED: {exc}")
        print("0 passed, 1 failed")
        return 1
    finally:
        net.destroy()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")


# -- inside the namespace: VMs, rollout, checks ------------------------------------------


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

    def boot(self) -> None:
        command = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rollout-e2e"]
        must([*command, "-f", self.key], "ssh-keygen")
        public = self.key.with_suffix(".pub").read_text().strip()
        for vm in self.vms:
            vm.boot(self.image, self.accel, public, self.logs)
        began = time.monotonic()
        for vm in self.vms:
            wait(lambda vm=vm: vm.ssh_ready(self.key), 900, f"SSH on {vm.name}", every=3)
        self.timings["boot to SSH (3 VMs)"] = time.monotonic() - began
        log(f"3 VMs answer SSH after {self.timings['boot to SSH (3 VMs)']:.0f} s ({self.accel})")

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
        document = vm.status()
        if document is None:
            return f"{vm.name} does not answer /status"
        listed = catalog(document)
        missing = [o.name for o in others if self.peers[o.name] not in listed]
        return f"{vm.name}'s catalog lacks {', '.join(missing)}" if missing else None

    def check_services(self) -> None:
        for vm in self.vms:
            result = vm.ssh(
                self.key,
                "systemctl is-active mosaik-node; systemctl show -p User -p MainPID "
                "mosaik-node; stat -c '%a %U' /etc/mosaik/node.key",
            )
            lines = result.stdout.split()
            if result.returncode != 0 or lines[0] != "active" or "User=mosaik" not in lines:
                raise Failed(f"{vm.name}: mosaik-node is not an active service: {result.stdout}")
            if lines[-2:] != ["600", "mosaik"]:
                raise Failed(f"{vm.name}: key file is {lines[-2:]}, expected 600 mosaik")
            document = vm.status()
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
                counter = (vm.status() or {}).get("counter")
                if not isinstance(counter, dict) or counter.get("leader") is None:
                    return f"{vm.name} knows no counter leader"
                leaders.add(counter["leader"])
            return None if len(leaders) == 1 else f"members disagree on the leader: {leaders}"

        wait(agreed, 300, f"{what}: one counter leader")
        start = max(counter_value(vm.status()) or 0 for vm in vms)

        def grew() -> str | None:
            now = max(counter_value(vm.status()) or 0 for vm in vms)
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
            document = vm.status()
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
        victim.kill()
        log(f"SIGKILLed the VM of {victim.name}")

        def purged() -> str | None:
            for vm in survivors:
                document = vm.status()
                if document is None:
                    return f"{vm.name} does not answer"
                if self.peers[victim.name] in catalog(document):
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
        environment = self.vms[1].ssh(self.key, "cat /etc/mosaik/node.env").stdout
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
                vm.stop()
        for what, seconds in self.timings.items():
            log(f"  {seconds:7.1f} s  {what}")
        log(f"PASSED ({self.accel})")
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
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        if args.t0 is not None:
            start_clock(args.t0)
        return Inside(args).main()
    return outside(args)


if __name__ == "__main__":
    sys.exit(main())
