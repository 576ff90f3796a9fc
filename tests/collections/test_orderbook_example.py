"""examples/orderbook/run.py runs: three matchers agree on the book after two traders' orders."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import deadline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orderbook" / "run.py"


async def test_the_orderbook_demo_matchers_agree() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "demo",
        "--orders",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(deadline(120)):
        output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    for matcher in ("m1", "m2", "m3"):
        assert f"{matcher}: book " in text and "after 20 orders" in text
    assert "agreed: True" in text
    assert "sent 10 orders" in text
