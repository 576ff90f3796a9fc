"""examples/sensors.py runs: one producer process, two consumer processes, rates printed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import deadline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sensors.py"


async def test_the_sensors_demo_delivers_to_both_consumers() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "demo",
        "--seconds",
        "2",
        "--rate",
        "500",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(deadline(90)):
        output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    assert "c1: " in text and "c2: " in text
    assert "exit codes [0, 0, 0]" in text
