"""Machinery of the rollout end-to-end test: a private network namespace with a bridge and
taps, plain VMs under QEMU on it, SSH into them, and their nodes' /status.

Used by ``rollout_e2e.py``; nothing here touches an interface it did not create.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIME_FACTOR = float(os.environ.get("TIME_FACTOR", "1"))
ADMIN_PORT = 9100
SSH_OPTIONS = (
    "BatchMode=yes",
    "ConnectTimeout=10",
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "LogLevel=ERROR",
)
_clock = {"t0": time.monotonic()}


def start_clock(t0: float) -> None:
    """Count log times from ``t0`` (CLOCK_MONOTONIC is one clock for every process)."""
    _clock["t0"] = t0


def started() -> float:
    return _clock["t0"]


def log(message: str) -> None:
    print(f"[rollout-e2e {time.monotonic() - _clock['t0']:6.0f}s] {message}", flush=True)


class Failed(Exception):
    """A check of the end-to-end test did not hold."""


def flags(options: Mapping[str, object]) -> list[str]:
    """``{"-m": "1G", ...}`` as ``["-m", "1G", ...]``."""
    return [str(part) for pair in options.items() for part in pair]


def run(argv: Iterable[object], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], text=True, check=False, **kwargs)


def must(argv: Iterable[object], what: str) -> str:
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


# -- the network --------------------------------------------------------------------------


@dataclass(frozen=True)
class Net:
    """A namespace holding bridge ``br0`` at ``<prefix>.1/24`` and taps ``tap0..N-1``."""

    namespace: str
    prefix: str
    taps: int

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"

    def create(self) -> None:
        ip = ["ip", "-n", self.namespace]
        must(["ip", "netns", "add", self.namespace], "creating the network namespace")
        must([*ip, "link", "set", "lo", "up"], "lo up")
        must([*ip, "link", "add", "br0", "type", "bridge"], "bridge")
        must([*ip, "addr", "add", f"{self.gateway}/24", "dev", "br0"], "bridge address")
        must([*ip, "link", "set", "br0", "up"], "bridge up")
        for index in range(self.taps):
            must([*ip, "tuntap", "add", "dev", f"tap{index}", "mode", "tap"], "tap")
            must([*ip, "link", "set", f"tap{index}", "master", "br0", "up"], "tap up")

    def destroy(self) -> None:
        """Kill every process left in the namespace (all ours), then delete it."""
        for pid in self._pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self._pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        run(["ip", "netns", "del", self.namespace], capture_output=True)

    def _pids(self) -> list[int]:
        listed = run(["ip", "netns", "pids", self.namespace], capture_output=True)
        return [int(pid) for pid in listed.stdout.split() if pid.isdigit()]


# -- the VMs ------------------------------------------------------------------------------


@dataclass
class Vm:
    name: str
    index: int
    address: str
    process: subprocess.Popen[bytes] | None = None

    def boot(self, image: Path, accel: str, public_key: str, logs: Path) -> None:
        """Start QEMU on ``tap<index>``: address by ``ip=``, root's key by SMBIOS credential."""
        manifest = json.loads((image / "manifest.json").read_text())
        cmdline = f"{manifest['cmdline']} ip={self.address}:::255.255.255.0:{self.name}:eth0:none"
        options = {
            "-machine": "q35",
            "-accel": accel,
            "-cpu": "host" if accel == "kvm" else "max",
            "-m": "1G",
            "-smp": "1",
            "-display": "none",
            "-serial": f"file:{logs / (self.name + '.serial')}",
            "-bios": image / "OVMF.fd",
            "-kernel": image / "vmlinuz",
            "-initrd": image / "initrd.img",
            "-append": cmdline,
            "-netdev": f"tap,id=net0,ifname=tap{self.index},script=no,downscript=no",
            "-device": f"virtio-net-pci,netdev=net0,mac=52:54:00:d6:00:{11 + self.index:02x}",
            "-smbios": f"type=11,value=io.systemd.credential:ssh.authorized_keys.root={public_key}",
        }
        argv = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-no-reboot"]
        with (logs / f"{self.name}.qemu").open("wb") as output:
            self.process = subprocess.Popen(
                [*argv, *flags(options)], stdout=output, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def ssh(self, key: Path, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        options = [part for option in SSH_OPTIONS for part in ("-o", option)]
        argv = ["ssh", "-i", str(key), *options, f"root@{self.address}", command]
        try:
            return run(argv, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 255, "", "timed out")

    def ssh_ready(self, key: Path) -> str | None:
        """None once root logs in over SSH, else why not (QEMU exiting is a failure)."""
        if self.process is not None and self.process.poll() is not None:
            raise Failed(f"QEMU of {self.name} exited with {self.process.returncode}")
        result = self.ssh(key, "true", timeout=20)
        return None if result.returncode == 0 else f"ssh: {result.stderr.strip()[-200:]}"

    def status(self, timeout: float = 5) -> dict[str, Any] | None:
        """The node's /status, or None when it does not answer."""
        url = f"http://{self.address}:{ADMIN_PORT}/status"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:
                document = json.load(reply)
                return document if isinstance(document, dict) else None
        except (urllib.error.URLError, OSError, ValueError):
            return None


# -- what the nodes report ----------------------------------------------------------------


def catalog(document: Mapping[str, Any] | None) -> set[str]:
    entries = (document or {}).get("catalog", [])
    return {str(e.get("peer_id")) for e in entries if isinstance(e, dict)}


def counter_value(document: Mapping[str, Any] | None) -> int | None:
    """The replicated counter's value a node has applied (None: no counter there)."""
    counter = (document or {}).get("counter")
    value = counter.get("value") if isinstance(counter, dict) else None
    return value if isinstance(value, int) else None


def longest_stall(samples: Sequence[tuple[float, int]]) -> float:
    """The longest time the counter's value did not grow."""
    stall, since, last = 0.0, 0.0, None
    for when, value in samples:
        if last is None or value > last:
            since, last = when, value
        stall = max(stall, when - since)
    return stall


@dataclass
class Sampler:
    """Polls every node's /status in the background: who answers, on which version, and the
    highest counter value any of them has applied."""

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
            documents = {vm.name: vm.status(timeout=3) for vm in self.vms}
            now = time.monotonic()
            self.samples.append(
                (
                    now,
                    {n: None if d is None else str(d.get("version")) for n, d in documents.items()},
                )
            )
            values = [v for v in map(counter_value, documents.values()) if v is not None]
            if values:
                self.counter.append((now, max(values)))
            self._stop.wait(1)
