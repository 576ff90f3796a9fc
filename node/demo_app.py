"""What the nodes of ``mosaik demo`` do, chosen by their role tags (``node run --demo-app``).

- every node carries a TDX ticket from the SIMULATED platform in ``tdx_dir``, quoting its
  measurements and bound to its peer id, network and start time;
- ``sensor``: produces ``SensorReading`` datums on a stream, a few hundred per second, to
  consumers whose ticket verifies (DCAP chain to the simulated root, then the policy's
  measurement allow-list);
- ``monitor``: consumes them from every sensor it discovers and reports the rate, or why it
  was refused.
Each role reports in the node's ``/status`` under ``"demo"``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from attestation import Policy, SimulatedPlatform
from node._tasks import TaskScope
from node.tickets import TdxTicketValidator, mint_tdx_ticket

if TYPE_CHECKING:
    from node.network import Network
    from node.streams import Consumer

SENSOR_RATE = 200  # readings per second


class SensorReading(msgspec.Struct, frozen=True):
    sensor: str
    seq: int
    celsius: float


@dataclass(frozen=True)
class DemoAttestation:
    """The simulated TDX platform every demo node shares, this node's MRTD and the policy."""

    tdx_dir: Path
    mrtd: bytes
    policy: Path


class DemoApp:
    def __init__(
        self, net: Network, roles: set[str], attestation: DemoAttestation | None = None
    ) -> None:
        self._net = net
        self._roles = roles
        self._attestation = attestation
        self._validators: tuple[TdxTicketValidator, ...] = ()
        self._consumer: Consumer[SensorReading] | None = None
        self._tasks = TaskScope("demo-app")
        self._sent = 0
        self._received = 0
        self._window: list[tuple[float, int]] = []

    async def start(self) -> None:
        if self._attestation is not None:
            self._validators = (self._attest(self._attestation),)
        if "sensor" in self._roles:
            self._tasks.spawn(self._produce(), "sensor")
        if "monitor" in self._roles:
            self._tasks.spawn(self._consume(), "monitor")
        self._net.register_status("demo", self.status)

    @property
    def validators(self) -> tuple[TdxTicketValidator, ...]:
        """What the demo's stream and counter group require of peers (after ``start``)."""
        return self._validators

    async def close(self) -> None:
        await self._tasks.aclose()

    def _attest(self, attestation: DemoAttestation) -> TdxTicketValidator:
        """Carry a SIMULATED TDX ticket; return the validator sensors require of consumers."""
        platform = SimulatedPlatform.open(
            attestation.tdx_dir, measurements={"mrtd": attestation.mrtd}
        )
        now = int(time.time())
        net = self._net
        ticket = mint_tdx_ticket(
            platform,
            net.peer_id,
            net.network_id,
            net.discovery.local_entry.entry.start_ms,
            quoted_at=now,
            expiration=now + 3600,
            collateral=platform.collateral(now - 60),
        )
        net.discovery.add_ticket(ticket)
        return TdxTicketValidator(
            Policy.from_file(attestation.policy), root_ca_der=platform.root_ca_der
        )

    async def _produce(self) -> None:
        producer = self._net.streams.produce(SensorReading, require_ticket=self._validators)
        name = self._net.peer_id.short()
        period = 1 / SENSOR_RATE
        while True:
            await producer.send(SensorReading(name, self._sent, 20 + (self._sent % 50) / 10))
            self._sent += 1
            await asyncio.sleep(period)

    async def _consume(self) -> None:
        consumer = self._net.streams.consume(SensorReading)
        self._consumer = consumer
        async for _ in consumer:
            self._received += 1

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        self._window = [(t, n) for t, n in self._window if now - t <= 2.0]
        self._window.append((now, self._received))
        first_t, first_n = self._window[0]
        rate = (self._received - first_n) / (now - first_t) if now > first_t else 0.0
        refused = [
            {"peer_id": channel.peer_id.hex(), "code": channel.close_code, "error": channel.error}
            for channel in (self._consumer.producers() if self._consumer else [])
            if channel.close_code is not None and channel.datums == 0
        ]
        return {
            "roles": sorted(self._roles),
            "attested": self._attestation is not None,
            "refused_by": refused,
            "readings_sent": self._sent,
            "readings_received": self._received,
            "receive_rate_per_s": round(rate, 1),
        }
