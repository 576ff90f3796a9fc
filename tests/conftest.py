"""Shared test helpers: every deadline scales with TIME_FACTOR (default 1)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

TIME_FACTOR = float(os.environ.get("TIME_FACTOR", "1"))


def deadline(seconds: float) -> float:
    """A timeout scaled by TIME_FACTOR."""
    return seconds * TIME_FACTOR


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout: float = 10.0,  # noqa: ASYNC109 - a test helper; scaled by TIME_FACTOR
    what: str = "",
) -> None:
    """Poll ``condition`` until true; fail with ``what`` after the scaled deadline."""
    async with asyncio.timeout(deadline(timeout)):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met: {what}")  # pragma: no cover


async def http_get(addr: Any, path: str) -> tuple[int, bytes]:
    """GET ``path`` from a node's admin address (a ``SocketAddr``): status code and body."""
    reader, writer = await asyncio.open_connection(addr.host, addr.port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
