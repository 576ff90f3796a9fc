"""A hand-driven in-memory cluster for pure-core tests: no clock, no randomness beyond a
seeded ``random.Random``, messages delivered only when the test says so."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from node.groups.raft import (
    Entry,
    Membership,
    MemoryStorage,
    Message,
    RaftConfig,
    RaftNode,
    ReadState,
    Role,
    Snapshot,
    bootstrap,
)
from node.primitives import PeerId

CONFIG = RaftConfig(election_ticks=10, heartbeat_ticks=1)


def peer(n: int) -> PeerId:
    return PeerId(bytes([n]) * 32)


class Member:
    """A core with its storage and what its Readys produced."""

    def __init__(self, node_id: PeerId, storage: MemoryStorage, config: RaftConfig) -> None:
        self.id = node_id
        self.storage = storage
        self.config = config
        self.core = RaftNode(node_id, storage, config, random.Random(node_id.bytes[0]))
        self.applied: list[Entry] = []
        self.read_states: list[ReadState] = []
        self.snapshots: list[Snapshot] = []

    def restart(self) -> None:
        self.core = RaftNode(self.id, self.storage, self.config, random.Random(1))

    def drain(self) -> list[Message]:
        """Handle every Ready as a correct shell would; return the messages to send."""
        out: list[Message] = []
        while self.core.has_ready():
            rd = self.core.ready()
            self.storage.save(rd.hard_state, rd.entries, rd.snapshot)
            if rd.snapshot is not None:
                self.snapshots.append(rd.snapshot)
            self.applied.extend(rd.committed_entries)
            self.read_states.extend(rd.read_states)
            out.extend(rd.messages)
            self.core.advance(rd)
        return out


class Cluster:
    """Members that deliver messages to each other in rounds, through an optional filter."""

    def __init__(
        self,
        voters: Iterable[int],
        learners: Iterable[int] = (),
        *,
        extra: Iterable[int] = (),
        config: RaftConfig = CONFIG,
        configs: dict[int, RaftConfig] | None = None,
    ) -> None:
        membership = Membership.of((peer(n) for n in voters), (peer(n) for n in learners))
        self.members: dict[PeerId, Member] = {}
        for n in [*voters, *learners, *extra]:
            storage = MemoryStorage()
            if peer(n) in membership:
                bootstrap(storage, membership)
            cfg = (configs or {}).get(n, config)
            self.members[peer(n)] = Member(peer(n), storage, cfg)
        self.drop: Callable[[Message], bool] = lambda _msg: False
        self.pending: list[Message] = []

    def __getitem__(self, n: int) -> Member:
        return self.members[peer(n)]

    def core(self, n: int) -> RaftNode:
        return self.members[peer(n)].core

    def collect(self) -> None:
        for member in self.members.values():
            self.pending.extend(member.drain())

    def deliver(self, max_rounds: int = 100) -> None:
        """Deliver messages until none are left (dropping what ``drop`` selects)."""
        for _ in range(max_rounds):
            self.collect()
            if not self.pending:
                return
            batch, self.pending = self.pending, []
            for msg in batch:
                if not self.drop(msg) and msg.to in self.members:
                    self.members[msg.to].core.step(msg)
        raise AssertionError("messages still flowing after max_rounds")

    def elect(self, n: int) -> None:
        self.core(n).campaign()
        self.deliver()
        assert self.core(n).role is Role.LEADER, f"{n} did not win: {self.core(n).role}"

    def tick(self, times: int = 1, only: Iterable[int] | None = None) -> None:
        for _ in range(times):
            for member in self.members.values():
                if only is None or member.id in {peer(n) for n in only}:
                    member.core.tick()
            self.deliver()

    def isolate(self, n: int) -> None:
        target = peer(n)
        self.drop = lambda msg: target in (msg.sender, msg.to)

    def heal(self) -> None:
        self.drop = lambda _msg: False
