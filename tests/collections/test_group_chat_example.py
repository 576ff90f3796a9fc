"""examples/group_chat.py runs: three participant processes each see every message."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import deadline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "group_chat.py"


async def test_the_group_chat_demo_delivers_every_message_to_everyone() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "demo",
        "--messages",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(deadline(60)):
        output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    for name in ("alice", "bob", "carol"):
        assert f"{name}: saw 9 messages from 3 users" in text
    assert "exit codes [0, 0, 0]" in text
