"""Real nodes on loopback for the group runtime tests: fast timing, helpers to wait on them.

Every node bootstraps its discovery from the first one. Group timing is short (50 ms ticks,
elections after 300-600 ms) so that elections and failovers take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from node.groups import ApplyContext, ConsensusConfig, Group, Role
from node.network import Network
from node.primitives import Digest, PeerId, SecretKey, encode
from tests.conftest import wait_until

NETWORK = "groups-tests"
FAST = ConsensusConfig(
    heartbeat_interval=0.05,
    election_ticks=6,
    bootstrap_delay=0.2,
    member_timeout=2.0,
    forward_timeout=3.0,
    query_timeout=3.0,
)


class Put(msgspec.Struct, frozen=True, tag="put"):
    key: str
    value: int


class Get(msgspec.Struct, frozen=True):
    key: str


class _KvState(msgspec.Struct, array_like=True):
    data: dict[str, int]
    history: list[int]


class Kv:
    """A map of ints that also records every applied index: replicas must agree on both."""

    command_type = Put
    query_type = Get

    def __init__(self, snapshot_padding: int = 0) -> None:
        self.data: dict[str, int] = {}
        self.history: list[int] = []
        self.padding = snapshot_padding

    def signature(self) -> Digest:
        return Digest.from_name("tests.groups.Kv")

    def apply(self, command: Put, ctx: ApplyContext) -> int:
        self.data[command.key] = command.value
        self.history.append(ctx.index)
        return len(self.data)

    def query(self, query: Get) -> int | None:
        return self.data.get(query.key)

    def snapshot(self) -> bytes:
        return encode(_KvState(self.data, self.history)) + b"\0" * self.padding

    def restore(self, data: bytes) -> None:
        state = msgspec.msgpack.Decoder(_KvState).decode(data[: len(data) - self.padding])
        self.data, self.history = state.data, state.history


MakeNode = Callable[..., Awaitable[Network]]


@pytest.fixture
async def make_node(tmp_path: Path) -> AsyncIterator[MakeNode]:
    nodes: list[Network] = []

    async def make(
        *, seed: Network | None = None, bootstrap: bool = True, **options: Any
    ) -> Network:
        live = [n for n in nodes if not n._closed]
        seeds = [seed.address] if seed else [live[0].address] if bootstrap and live else []
        net = await Network.create(NETWORK, bootstrap=seeds, **options)
        nodes.append(net)
        return net

    yield make
    for net in reversed(nodes):
        await net.close()


async def join(net: Network, key: str = "kv", *, machine: Any = None, **options: Any) -> Group:
    options.setdefault("consensus", FAST)
    return await net.groups.join(key, state_machine=machine or Kv(), **options)


async def cluster(make_node: MakeNode, size: int, **options: Any) -> list[Group]:
    """``size`` nodes in one group with one leader and ``size`` online members."""
    nets = [await make_node() for _ in range(size)]
    groups = [await join(net, bootstrap_expect=size, **options) for net in nets]
    await converged(groups, voters=size if size % 2 else size - 1)
    return groups


async def converged(groups: Sequence[Group], *, voters: int) -> Group:
    """Until all agree on one leader, every one is online and there are ``voters`` voters;
    returns the leader's handle."""

    def agreed() -> bool:
        leaders = {g.leader for g in groups}
        return (
            len(leaders) == 1
            and None not in leaders
            and all(g.online for g in groups)
            and all(len(g.members.voters) == voters for g in groups)
            and all(len(g.members.members) == len(groups) for g in groups)
        )

    await wait_until(agreed, 15, f"{len(groups)} members agree on a leader")
    return leader_of(groups)


def leader_of(groups: Sequence[Group]) -> Group:
    leaders = [g for g in groups if g.role is Role.LEADER]
    assert len(leaders) == 1, f"{len(leaders)} leaders"
    return leaders[0]


def peer_of(group: Group) -> PeerId:
    return group._rt.node.peer_id


def key(n: int) -> SecretKey:
    return SecretKey.from_seed(n.to_bytes(32, "big"))
