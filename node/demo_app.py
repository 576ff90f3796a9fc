"""What the nodes of ``mosaik demo`` do, chosen by their role tags (``node run --demo-app``).

- ``sensor``: produces ``SensorReading`` datums on a stream, a few hundred per second;
- ``monitor``: consumes them from every sensor it discovers and reports the rate.
Each role reports in the node's ``/status`` under ``"demo"``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec

from node._tasks import TaskScope

if TYPE_CHECKING:
    from node.network import Network

SENSOR_RATE = 200  # readings per second


class SensorReading(msgspec.Struct, frozen=True):
    sensor: str
    seq: int
    celsius: float


class DemoApp:
    def __init__(self, net: Network, roles: set[str]) -> None:
        self._net = net
        self._roles = roles
        self._tasks = TaskScope("demo-app")
        self._sent = 0
        self._received = 0
        self._window: list[tuple[float, int]] = []

    async def start(self) -> None:
        if "sensor" in self._roles:
            self._tasks.spawn(self._produce(), "sensor")
        if "monitor" in self._roles:
            self._tasks.spawn(self._consume(), "monitor")
        self._net.register_status("demo", self.status)

    async def close(self) -> None:
        await self._tasks.aclose()

    async def _produce(self) -> None:
        producer = self._net.streams.produce(SensorReading)
        name = self._net.peer_id.short()
        period = 1 / SENSOR_RATE
        while True:
            await producer.send(SensorReading(name, self._sent, 20 + (self._sent % 50) / 10))
            self._sent += 1
            await asyncio.sleep(period)

    async def _consume(self) -> None:
        consumer = self._net.streams.consume(SensorReading)
        async for _ in consumer:
            self._received += 1

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        self._window = [(t, n) for t, n in self._window if now - t <= 2.0]
        self._window.append((now, self._received))
        first_t, first_n = self._window[0]
        rate = (self._received - first_n) / (now - first_t) if now > first_t else 0.0
        return {
            "roles": sorted(self._roles),
            "readings_sent": self._sent,
            "readings_received": self._received,
            "receive_rate_per_s": round(rate, 1),
        }
