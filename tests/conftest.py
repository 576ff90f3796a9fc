"""Shared test helpers: every deadline scales with TIME_FACTOR (default 1)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

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
