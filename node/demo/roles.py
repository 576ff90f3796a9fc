"""What each node of ``mosaik demo`` runs (``node run --app node.demo.roles:run``).

- it carries a TDX ticket from the SIMULATED platform the cluster shares, quoting its MRTD and
  bound to its peer id, network and start time (``MOSAIK_DEMO_TDX_DIR``, ``MOSAIK_DEMO_MRTD``
  and ``MOSAIK_DEMO_POLICY`` say which platform, MRTD and policy; unset: no ticket);
- tag ``sensor``: produces ``SensorReading`` datums on a stream, a few hundred per second, to
  consumers whose ticket verifies (DCAP chain to the simulated root, then the policy's
  measurement allow-list);
- tag ``monitor``: consumes them from every sensor it discovers and reports the rate, or why it
  was refused;
- every node runs the replicated counter (``node.demo.counter``), whose group requires the
  same ticket policy.
The roles report in the node's ``/status`` under ``"demo"``, the counter under ``"counter"``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from attestation import Policy, SimulatedPlatform
from node.demo import counter
from node.primitives import Digest
from node.tickets import TdxTicketValidator, mint_tdx_ticket

if TYPE_CHECKING:
    from node import Network
    from node.streams import Consumer

SENSOR_RATE = 200  # readings per second
ROLES = ("sensor", "monitor")


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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DemoAttestation | None:
        """From ``MOSAIK_DEMO_TDX_DIR``, ``MOSAIK_DEMO_MRTD`` (hex) and ``MOSAIK_DEMO_POLICY``."""
        tdx_dir, mrtd, policy = (
            env.get(f"MOSAIK_DEMO_{name}") for name in ("TDX_DIR", "MRTD", "POLICY")
        )
        if not (tdx_dir and mrtd and policy):
            return None
        return cls(Path(tdx_dir), bytes.fromhex(mrtd), Path(policy))

    def env(self) -> dict[str, str]:
        """The environment ``from_env`` reads this back from."""
        return {
            "MOSAIK_DEMO_TDX_DIR": str(self.tdx_dir),
            "MOSAIK_DEMO_MRTD": self.mrtd.hex(),
            "MOSAIK_DEMO_POLICY": str(self.policy),
        }


def attest(net: Network, attestation: DemoAttestation) -> TdxTicketValidator:
    """Carry a SIMULATED TDX ticket; return the validator the demo requires of peers."""
    platform = SimulatedPlatform.open(attestation.tdx_dir, measurements={"mrtd": attestation.mrtd})
    now = int(time.time())
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
    policy = Policy.from_file(attestation.policy)
    return TdxTicketValidator(policy, root_ca_der=platform.root_ca_der)


class Sensors:
    """The ``sensor`` and ``monitor`` roles: readings sent, received, and who refused us."""

    def __init__(self, net: Network, roles: set[str], *, attested: bool) -> None:
        self._net = net
        self._roles = roles
        self._attested = attested
        self._consumer: Consumer[SensorReading] | None = None
        self._sent = 0
        self._received = 0
        self._window: list[tuple[float, int]] = []

    async def produce(self, validators: tuple[TdxTicketValidator, ...]) -> None:
        producer = self._net.streams.produce(SensorReading, require_ticket=validators)
        name = self._net.peer_id.short()
        period = 1 / SENSOR_RATE
        while True:
            await producer.send(SensorReading(name, self._sent, 20 + (self._sent % 50) / 10))
            self._sent += 1
            await asyncio.sleep(period)

    async def consume(self) -> None:
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
            "attested": self._attested,
            "refused_by": refused,
            "readings_sent": self._sent,
            "readings_received": self._received,
            "receive_rate_per_s": round(rate, 1),
        }


async def run(net: Network) -> None:
    """Attest (if ``MOSAIK_DEMO_*`` say how), play the roles of the node's tags and run the
    counter, until cancelled.
    """
    attestation = DemoAttestation.from_env(os.environ)
    validators = (attest(net, attestation),) if attestation is not None else ()
    roles = {role for role in ROLES if Digest.from_name(role) in net.tags}
    sensors = Sensors(net, roles, attested=attestation is not None)
    net.register_status("demo", sensors.status)
    async with asyncio.TaskGroup() as tasks:
        if "sensor" in roles:
            tasks.create_task(sensors.produce(validators), name="sensor")
        if "monitor" in roles:
            tasks.create_task(sensors.consume(), name="monitor")
        tasks.create_task(counter.run(net, require_ticket=validators), name="counter")
