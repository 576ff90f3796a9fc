"""A replicated counter on a Raft group: the app ``mosaik node run --counter-group`` runs.

Every member applies the same increments in log order, so every member reports the same value
at the same index; a leader that dies loses no committed increment. ``run(net)`` is the app:
it joins the group, increments it every half second and reports under ``"counter"`` in the
node's ``/status`` until it is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from node.groups import ApplyContext, ConsensusConfig, Group, GroupError
from node.primitives import Digest, encode
from node.tickets import RequireTicket

if TYPE_CHECKING:
    from node import Network

log = logging.getLogger("mosaik.demo.counter")

COUNTER_GROUP = "demo-counter"


class Increment(msgspec.Struct, frozen=True, tag="inc"):
    by: int = 1


class Value(msgspec.Struct, frozen=True, tag="value"):
    """Query: the current value."""


class _CounterState(msgspec.Struct, array_like=True):
    value: int
    increments: int


class Counter:
    """A counter of increments; ``apply`` returns the value after the increment."""

    command_type = Increment
    query_type = Value

    def __init__(self) -> None:
        self.value = 0
        self.increments = 0

    def signature(self) -> Digest:
        return Digest.from_name("mosaik.demo.Counter.v1")

    def apply(self, command: Increment, ctx: ApplyContext) -> int:
        self.value += command.by
        self.increments += 1
        return self.value

    def query(self, query: Value) -> int:
        return self.value

    def snapshot(self) -> bytes:
        return encode(_CounterState(self.value, self.increments))

    def restore(self, data: bytes) -> None:
        state = msgspec.msgpack.decode(data, type=_CounterState)
        self.value, self.increments = state.value, state.increments

    def status(self) -> dict[str, Any]:
        return {"value": self.value, "increments": self.increments}


class CounterDemo:
    """This node's part in the counter group: ``increment`` adds one every ``interval`` seconds
    while the group is online.

    ``status()`` is the group's status with the value this node has applied and how many of
    its own increments were acknowledged (committed and applied). Killing the leader's process
    must leave every acknowledged increment in the value the new leader reports.
    """

    def __init__(self, group: Group) -> None:
        self.group = group
        self.acknowledged = 0

    @classmethod
    async def join(
        cls,
        net: Network,
        *,
        bootstrap_expect: int = 3,
        consensus: ConsensusConfig | None = None,
        require_ticket: RequireTicket = None,
    ) -> CounterDemo:
        group = await net.groups.join(
            COUNTER_GROUP,
            state_machine=Counter(),
            bootstrap_expect=bootstrap_expect,
            consensus=consensus,
            require_ticket=require_ticket,
        )
        return cls(group)

    async def increment(self, interval: float) -> None:
        """Increment every ``interval`` seconds until cancelled; count the acknowledged ones."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.group.execute(Increment())
            except GroupError as exc:
                log.info("counter increment not applied: %s", exc)
                continue
            self.acknowledged += 1

    def status(self) -> dict[str, Any]:
        """The group's status, with the value applied here and the increments acknowledged."""
        return self.group.status() | {
            "value": self.group.state_machine.value,
            "acknowledged": self.acknowledged,
        }

    async def close(self) -> None:
        await self.group.close()


async def run(net: Network, *, require_ticket: RequireTicket = None) -> None:
    """The app of ``node run --counter-group``: join the 3-member counter group, increment it
    twice a second and report under ``"counter"`` in ``/status``, until cancelled.
    """
    demo = await CounterDemo.join(net, require_ticket=require_ticket)
    net.register_status("counter", demo.status)
    try:
        await demo.increment(0.5)
    finally:
        await demo.close()
