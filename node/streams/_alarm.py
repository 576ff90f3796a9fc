"""A single re-armable wake-up at a unix time, for the shells of the sans-I/O cores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Alarm:
    """Calls ``callback`` once the wall clock reaches the armed deadline; re-arming replaces
    the previous deadline. Cores speak unix seconds (ticket expiries are wall-clock times)."""

    __slots__ = ("_at", "_callback", "_handle")

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def arm(self, deadline: float | None) -> None:
        if deadline == self._at:
            return
        self.cancel()
        self._at = deadline
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            self._handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._at = None

    def _fire(self) -> None:
        self._handle = None
        self._at = None
        self._callback()
