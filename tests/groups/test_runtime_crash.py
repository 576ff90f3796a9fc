"""Durability across processes: SIGKILL every member, restart them from their SQLite logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from node.primitives import SecretKey
from tests.conftest import deadline

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Member:
    def __init__(self, n: int, port: int, seed: str, data: Path) -> None:
        self.n, self.port, self.seed, self.data = n, port, seed, data
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self, mode: str) -> None:
        command = [
            sys.executable, "-m", "tests.groups.member_process", mode,
            "--key-seed", str(self.n), "--bind", f"127.0.0.1:{self.port}",
            "--data-dir", str(self.data),
        ]  # fmt: skip
        if self.n != 1:
            command += ["--bootstrap", self.seed]
        self.lines = []
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True).start()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def acks(self) -> list[int]:
        return [int(line.split()[1]) for line in list(self.lines) if line.startswith("ack ")]

    def value(self) -> int | None:
        values = [int(ln.split()[1]) for ln in list(self.lines) if ln.startswith("value ")]
        return values[0] if values else None


def wait(condition: object, seconds: float, what: str) -> None:
    end = time.monotonic() + deadline(seconds)
    while time.monotonic() < end:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


def test_sigkill_of_every_member_loses_no_acknowledged_command(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    seed = f"{SecretKey.from_seed((1).to_bytes(32, 'big')).peer_id.hex()}@127.0.0.1:{ports[0]}"
    members = [Member(n + 1, ports[n], seed, tmp_path / f"m{n}") for n in range(3)]
    try:
        for member in members:
            member.start("run")
        wait(lambda: sum(len(m.acks()) for m in members) >= 90, 60, "90 acknowledged increments")
        for member in members:
            member.kill()  # all at once: no member keeps the data for the others
        acknowledged = max(max(m.acks(), default=0) for m in members)
        for member in members:
            member.start("check")
        wait(lambda: all(m.value() is not None for m in members), 60, "restarted members answer")
        values = {m.value() for m in members}
        assert len(values) == 1, values
        value = values.pop()
        assert value is not None and value >= acknowledged
    finally:
        for member in members:
            if member.process is not None and member.process.poll() is None:
                member.kill()
