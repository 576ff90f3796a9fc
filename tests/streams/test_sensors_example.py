"""examples/sensors.py runs: one producer process, two consumer processes, rates printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.network import Network
from tests.conftest import deadline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sensors.py"


async def test_the_sensors_demo_delivers_to_both_consumers() -> None:
    async with Network.create("probe") as net:
        if not hasattr(net, "streams"):
            pytest.skip("net.streams is not wired into Network yet")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "demo", "--seconds", "2", "--rate", "500"],
        capture_output=True,
        text=True,
        timeout=deadline(30),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "c1: " in result.stdout and "c2: " in result.stdout
    assert "exit codes [0, 0, 0]" in result.stdout
