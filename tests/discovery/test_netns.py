"""Multi-host discovery: five node processes in five Linux network namespaces.

Each namespace is a host with its own address on a bridge (the bridge lives in a sixth,
"switch" namespace, so the machine's own network is never touched). One host is cut off with
iptables: the others purge it after its TTL, and see it again once the rule is gone.
Needs root, `ip` and `iptables`; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.primitives import SecretKey
from tests.conftest import deadline

HOSTS = 5
SUBNET = "10.213.7"
TTL_S = 3


def _missing_capability() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (make debian-deps installs it)"
    return None


pytestmark = pytest.mark.skipif(
    _missing_capability() is not None, reason=str(_missing_capability())
)


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


class Lab:
    """Namespaces, veths and a bridge named after this process, removed on exit."""

    def __init__(self) -> None:
        tag = os.getpid() % 100000
        self.switch = f"msw{tag}"
        self.hosts = [f"mh{tag}-{i}" for i in range(HOSTS)]
        self.addrs = [f"{SUBNET}.{i + 1}" for i in range(HOSTS)]
        self.procs: list[subprocess.Popen[str]] = []

    def up(self) -> None:
        sh("ip", "netns", "add", self.switch)
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        for i, (host, addr) in enumerate(zip(self.hosts, self.addrs, strict=True)):
            sh("ip", "netns", "add", host)
            sh("ip", "-n", host, "link", "set", "lo", "up")
            sh("ip", "link", "add", f"mveth{os.getpid() % 1000}x{i}", "type", "veth",
               "peer", "name", "eth0", "netns", host)  # fmt: skip
            outer = f"mveth{os.getpid() % 1000}x{i}"
            sh("ip", "link", "set", outer, "netns", self.switch)
            sh("ip", "-n", self.switch, "link", "set", outer, "master", "br0")
            sh("ip", "-n", self.switch, "link", "set", outer, "up")
            sh("ip", "-n", host, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", host, "link", "set", "eth0", "up")

    def down(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for ns in [*self.hosts, self.switch]:
            sh("ip", "netns", "del", ns, check=False)

    def run_node(
        self, i: int, key: Path, bootstrap: str | None, *extra: str
    ) -> subprocess.Popen[str]:
        args = [
            "ip", "netns", "exec", self.hosts[i], sys.executable, "-m", "node", "node", "run",
            "--network", "netns-test", "--secret-file", str(key), "--bind",
            f"{self.addrs[i]}:7400", "--metrics-addr", "127.0.0.1:9100",
            "--peer-ttl", str(TTL_S),
        ]  # fmt: skip
        if bootstrap:
            args += ["--bootstrap", bootstrap]
        args += extra
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(proc)
        return proc

    def catalog(self, i: int) -> set[str]:
        result = sh(
            "ip", "netns", "exec", self.hosts[i], sys.executable, "-m", "node", "node",
            "inspect", "127.0.0.1:9100", "--json", check=False,
        )  # fmt: skip
        if result.returncode != 0:
            return set()
        return {entry["peer_id"] for entry in json.loads(result.stdout)["catalog"]}

    def cut(self, i: int) -> None:
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            sh("ip", "netns", "exec", self.hosts[i], "iptables", "-A", chain, flag, "eth0",
               "-j", "DROP")  # fmt: skip

    def restore(self, i: int) -> None:
        sh("ip", "netns", "exec", self.hosts[i], "iptables", "-F")


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def wait_for(condition: object, seconds: float, what: str) -> None:
    end = time.monotonic() + deadline(seconds)
    while time.monotonic() < end:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out: {what}")


def test_five_hosts_discover_each_other_and_a_cut_host_is_purged_then_returns(
    lab: Lab, tmp_path: Path
) -> None:
    keys = []
    for i in range(HOSTS):
        path = tmp_path / f"node{i}.key"
        SecretKey.generate().to_file(path)
        keys.append(path)
    ids = [SecretKey.from_file(k).peer_id.hex() for k in keys]
    seed = f"{ids[0]}@{lab.addrs[0]}:7400"
    for i in range(HOSTS):
        proc = lab.run_node(i, keys[i], None if i == 0 else seed)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.search(rf"peer_id={ids[i]} address={re.escape(lab.addrs[i])}:7400", line), line

    everyone = set(ids)
    wait_for(
        lambda: all(lab.catalog(i) == everyone - {ids[i]} for i in range(HOSTS)),
        30,
        "all five hosts discover each other across namespaces",
    )
    lab.cut(HOSTS - 1)
    cut_id = ids[HOSTS - 1]
    wait_for(
        lambda: all(cut_id not in lab.catalog(i) for i in range(HOSTS - 1)),
        TTL_S * 5,
        "the cut-off host is purged after its TTL",
    )
    lab.restore(HOSTS - 1)
    wait_for(
        lambda: all(cut_id in lab.catalog(i) for i in range(HOSTS - 1)),
        TTL_S * 10,
        "the host returns once reachable again",
    )


def test_mdns_finds_peers_on_the_lan_without_a_seed(lab: Lab, tmp_path: Path) -> None:
    ids = []
    for i in range(3):
        path = tmp_path / f"node{i}.key"
        key = SecretKey.generate()
        key.to_file(path)
        ids.append(key.peer_id.hex())
        proc = lab.run_node(i, path, None, "--mdns")
        assert proc.stdout is not None
        assert "node ready" in proc.stdout.readline()
    everyone = set(ids)
    wait_for(
        lambda: all(lab.catalog(i) == everyone - {ids[i]} for i in range(3)),
        30,
        "three hosts with no bootstrap find each other over mDNS",
    )
