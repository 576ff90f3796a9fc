"""A deterministic simulation of a Raft group: N cores, a simulated network, crashes.

Everything random comes from one seed. The network drops, duplicates, delays (and so
reorders) messages and can be partitioned, also in one direction only. A crash loses the
core, its state machine and whatever of the current Ready was not yet saved; the node restarts
from its ``MemoryStorage``, which plays the disk. Clients run register operations (put, add,
ReadIndex get) whose history is checked for linearizability at the end.

Invariants are checked as the run goes (``Violation`` is raised at the first breach):
- election safety: at most one leader per term;
- log matching: equal (index, term) in two persisted logs means equal prefixes (a hash chain
  over each persisted log);
- leader completeness: a new leader's log holds every entry known to be committed;
- state machine safety: no two nodes apply different entries (or reach different states) at
  an index;
- per node: commit index and applied index never decrease while the node lives; the persisted
  term never decreases, and a persisted vote never changes within a term.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from node.groups.raft import (
    ConfChange,
    ConfChangeKind,
    Entry,
    EntryKind,
    LeadershipPreference,
    Membership,
    MemoryStorage,
    Message,
    NotLeader,
    ProposalDropped,
    RaftConfig,
    RaftError,
    RaftNode,
    Ready,
    Role,
    Snapshot,
    bootstrap,
)
from node.primitives import PeerId
from tests.groups.linearizability import Operation

logging.getLogger("node.groups.raft").setLevel(logging.ERROR)


class Violation(AssertionError):
    """A safety invariant broke."""


def peer(n: int) -> PeerId:
    return PeerId(bytes([n + 1]) * 32)


@dataclass
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    max_delay: int = 1
    crash: float = 0.0  # per node per tick
    crash_in_ready: float = 0.0  # per Ready: crash before or after the save
    restart: float = 0.2  # per crashed node per tick
    partition: float = 0.0  # per tick: start a partition
    heal: float = 0.1  # per tick: end partitions
    conf_change: float = 0.0  # per tick
    transfer: float = 0.0  # per tick: the leader hands leadership to a random voter
    snapshot_after: int = 0  # compact once this many applied entries are in the log (0: never)


@dataclass
class SimNode:
    id: PeerId
    storage: MemoryStorage
    rng: random.Random
    config: RaftConfig
    core: RaftNode | None = None
    value: int = 0
    applied: int = 0
    commit: int = 0
    chain_base: int = 0
    chain: list[int] = field(default_factory=lambda: [0])
    waiting_reads: list[tuple[int, bytes]] = field(default_factory=list)
    check_completeness: tuple[int, int] | None = None

    def chain_at(self, index: int) -> int | None:
        offset = index - self.chain_base
        return self.chain[offset] if 0 <= offset < len(self.chain) else None


class _Command(msgspec.Struct, array_like=True):
    op: int
    kind: str
    arg: int


_encode = msgspec.msgpack.Encoder().encode
_decode_command = msgspec.msgpack.Decoder(_Command).decode


class Simulation:
    def __init__(
        self,
        seed: int,
        *,
        voters: int = 3,
        spares: int = 1,
        faults: Faults | None = None,
        config: RaftConfig | None = None,
        clients: int = 3,
        max_ops: int = 60,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.config = config or RaftConfig(
            election_ticks=10, heartbeat_ticks=2, max_entries_per_message=8, max_inflight=4
        )
        self.now = 0
        self.clock = 0  # event counter for the client history
        self.network: list[tuple[int, int, Message]] = []
        self.sent = 0
        self.blocked: set[tuple[PeerId, PeerId]] = set()
        self.nodes: dict[PeerId, SimNode] = {}
        self.leaders: dict[int, PeerId] = {}
        self.applied_entries: dict[int, tuple[int, int, bytes]] = {}
        self.value_at: dict[int, int] = {0: 0}
        self.registry: dict[tuple[int, int], int] = {(0, 0): 0}
        self.commit_max, self.commit_hash = 0, 0
        initial = Membership.of(peer(i) for i in range(voters))
        for i in range(voters + spares):
            node_id = peer(i)
            storage = MemoryStorage()
            if i < voters:
                bootstrap(storage, initial)
            cfg = self.config
            if i == 0 and self.rng.random() < 0.3:
                cfg = msgspec.structs.replace(cfg, preference=LeadershipPreference.reluctant(2))
            node = SimNode(node_id, storage, random.Random(self.rng.random()), cfg)
            self.nodes[node_id] = node
            self._record(node, tuple(storage.entries(1, storage.last_index() + 1)))
            self._start(node)
        # clients
        self.history: list[Operation] = []
        self.open_ops: dict[int, tuple[int, PeerId, int, tuple[Any, ...]]] = {}
        self.idle_clients = list(range(clients))
        self.next_op = 0
        self.max_ops = max_ops
        self.reads: dict[bytes, int] = {}
        self.stats: Counter[str] = Counter()

    # -- node lifecycle -----------------------------------------------------------------------

    def _start(self, node: SimNode) -> None:
        node.core = RaftNode(node.id, node.storage, node.config, node.rng)
        snapshot = node.storage.snapshot()
        node.value = _decode_value(snapshot.data) if snapshot.index else 0
        node.applied = snapshot.index
        node.commit = node.core.commit_index
        node.waiting_reads = []

    def crash(self, node: SimNode) -> None:
        node.core = None
        node.waiting_reads = []
        node.check_completeness = None
        self.stats["crashes"] += 1
        for op_id, (client, at, _, _) in list(self.open_ops.items()):
            if at == node.id:  # the client's connection died: the op stays pending forever
                _, _, call, inp = self.open_ops.pop(op_id)
                self.history.append(Operation(client, call, None, inp))
                self.idle_clients.append(client)

    def live(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.core is not None]

    # -- the loop -----------------------------------------------------------------------------

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.step()

    def step(self) -> None:
        self.now += 1
        self._chaos()
        self._clients()
        order = list(self.nodes.values())
        self.rng.shuffle(order)
        for node in order:
            if node.core is not None:
                node.core.tick()
                self._process(node)
        while self.network and self.network[0][0] <= self.now:
            _, _, msg = heapq.heappop(self.network)
            node = self.nodes[msg.to]
            if node.core is None or (msg.sender, msg.to) in self.blocked:
                continue
            node.core.step(msg)
            self._process(node)

    def _send(self, msg: Message) -> None:
        self.stats[type(msg).__name__] += 1
        f = self.faults
        if self.rng.random() < f.drop:
            return
        copies = 2 if self.rng.random() < f.duplicate else 1
        for _ in range(copies):
            self.sent += 1
            delay = self.rng.randint(1, max(1, f.max_delay))
            heapq.heappush(self.network, (self.now + delay, self.rng.random(), msg))

    def _process(self, node: SimNode) -> None:
        while node.core is not None and node.core.has_ready():
            core = node.core
            rd = core.ready()
            if rd.soft_state is not None and rd.soft_state.role is Role.LEADER:
                self._on_leader(node, core.term)
            if self.rng.random() < self.faults.crash_in_ready / 2:
                self.crash(node)  # before the save: the whole Ready is lost
                return
            self._save(node, rd)
            if self.rng.random() < self.faults.crash_in_ready / 2:
                self.crash(node)  # saved, but nothing sent or applied
                return
            for msg in rd.messages:
                self._send(msg)
            if rd.snapshot is not None:
                node.value = _decode_value(rd.snapshot.data)
                node.applied = rd.snapshot.index
                self._check_state(node)
            for entry in rd.committed_entries:
                self._apply(node, entry)
            for read in rd.read_states:
                node.waiting_reads.append((read.index, read.context))
            self._answer_reads(node)
            core.advance(rd)
            if core.commit_index < node.commit:
                raise Violation(f"{self._who(node)} commit went back to {core.commit_index}")
            node.commit = core.commit_index
            self._maybe_compact(node)

    # -- invariants ---------------------------------------------------------------------------

    def _who(self, node: SimNode) -> str:
        return f"seed {self.seed} tick {self.now} node {node.id.short()}"

    def _on_leader(self, node: SimNode, term: int) -> None:
        holder = self.leaders.setdefault(term, node.id)
        if holder != node.id:
            raise Violation(
                f"{self._who(node)}: two leaders in term {term}: "
                f"{holder.short()} and {node.id.short()}"
            )
        # Leader completeness is checked once this leader persisted its log.
        node.check_completeness = (self.commit_max, self.commit_hash)

    def _save(self, node: SimNode, rd: Ready) -> None:
        prev = node.storage.hard_state
        node.storage.save(rd.hard_state, rd.entries, rd.snapshot)
        hard = node.storage.hard_state
        if hard.term < prev.term or hard.commit < prev.commit:
            raise Violation(f"{self._who(node)}: persisted state went back: {prev} -> {hard}")
        if hard.term == prev.term and prev.vote is not None and hard.vote != prev.vote:
            raise Violation(f"{self._who(node)}: changed its vote in term {hard.term}")
        if rd.snapshot is not None:
            key = (rd.snapshot.index, rd.snapshot.term)
            if key not in self.registry:
                raise Violation(f"{self._who(node)}: snapshot at {key} matches no entry")
            node.chain_base, node.chain = rd.snapshot.index, [self.registry[key]]
        self._record(node, rd.entries)
        if rd.hard_state is not None:
            self._on_commit(node, rd.hard_state.commit)
        if node.check_completeness is not None:
            index, expected = node.check_completeness
            node.check_completeness = None
            if node.chain_at(index) != expected and index >= node.chain_base:
                raise Violation(
                    f"{self._who(node)}: leader of term {hard.term} lacks the "
                    f"committed entry {index}"
                )

    def _record(self, node: SimNode, entries: tuple[Entry, ...]) -> None:
        if not entries:
            return
        del node.chain[entries[0].index - node.chain_base :]
        for e in entries:
            if e.index <= node.chain_base:
                continue
            h = hash((node.chain[-1], e.term, e.kind, e.data))
            node.chain.append(h)
            if self.registry.setdefault((e.index, e.term), h) != h:
                raise Violation(f"{self._who(node)}: log matching broken at {e.index}@{e.term}")

    def _on_commit(self, node: SimNode, commit: int) -> None:
        h = node.chain_at(commit)
        if h is None:
            return  # below this node's snapshot
        if commit >= self.commit_max:
            if self.commit_max >= node.chain_base and node.chain_at(self.commit_max) != (
                self.commit_hash
            ):
                raise Violation(f"{self._who(node)}: committed log diverges before {commit}")
            self.commit_max, self.commit_hash = commit, h

    def _apply(self, node: SimNode, entry: Entry) -> None:
        if entry.index != node.applied + 1:
            raise Violation(f"{self._who(node)}: applied {entry.index} after {node.applied}")
        record = (entry.term, int(entry.kind), entry.data)
        if self.applied_entries.setdefault(entry.index, record) != record:
            raise Violation(f"{self._who(node)}: applied a different entry at {entry.index}")
        node.applied = entry.index
        if entry.kind == EntryKind.COMMAND and entry.data:
            cmd = _decode_command(entry.data)
            node.value = node.value + cmd.arg if cmd.kind == "add" else cmd.arg
            pending = self.open_ops.get(cmd.op)
            if pending is not None and pending[1] == node.id:
                self._complete(cmd.op, node.value if cmd.kind == "add" else None)
        self._check_state(node)

    def _check_state(self, node: SimNode) -> None:
        expected = self.value_at.setdefault(node.applied, node.value)
        if expected != node.value:
            raise Violation(
                f"{self._who(node)}: state {node.value} at {node.applied}, "
                f"another node had {expected}"
            )

    def _maybe_compact(self, node: SimNode) -> None:
        threshold = self.faults.snapshot_after
        core = node.core
        if not threshold or core is None:
            return
        if node.applied - node.storage.first_index() + 1 < threshold:
            return
        meta = core.snapshot_meta()
        if meta.index < node.storage.first_index():
            return
        node.storage.compact(Snapshot(meta, _encode(node.value)))
        self.stats["snapshots"] += 1

    # -- faults -------------------------------------------------------------------------------

    def _chaos(self) -> None:
        f, rng = self.faults, self.rng
        for node in self.nodes.values():
            if node.core is not None and rng.random() < f.crash:
                self.crash(node)
            elif node.core is None and rng.random() < f.restart:
                self._start(node)
        if self.blocked and rng.random() < f.heal:
            self.blocked.clear()
        if not self.blocked and rng.random() < f.partition:
            self._partition()
        if rng.random() < f.conf_change:
            self._conf_change()
        if rng.random() < f.transfer:
            self._transfer()

    def _partition(self) -> None:
        ids = list(self.nodes)
        self.rng.shuffle(ids)
        cut = self.rng.randint(1, len(ids) - 1)
        side_a, side_b = ids[:cut], ids[cut:]
        one_way = self.rng.random() < 0.3
        for a in side_a:
            for b in side_b:
                self.blocked.add((a, b))
                if not one_way:
                    self.blocked.add((b, a))
        self.stats["partitions"] += 1

    def _conf_change(self) -> None:
        leader = self.leader()
        if leader is None or leader.core is None:
            return
        core = leader.core
        members = core.membership
        outside = [p for p in self.nodes if p not in members]
        options: list[ConfChange] = []
        options += [ConfChange(ConfChangeKind.ADD_LEARNER, p) for p in outside]
        options += [ConfChange(ConfChangeKind.ADD_VOTER, p) for p in members.learners]
        if len(members.voters) > 3:
            options += [ConfChange(ConfChangeKind.REMOVE, p) for p in members.voters]
        options += [ConfChange(ConfChangeKind.REMOVE, p) for p in members.learners]
        if not options:
            return
        try:
            core.propose_conf_change(self.rng.choice(options))
        except ProposalDropped:
            return
        self.stats["conf_changes"] += 1
        self._process(leader)

    def _transfer(self) -> None:
        leader = self.leader()
        if leader is None or leader.core is None:
            return
        leader.core.transfer_leader(self.rng.choice(leader.core.membership.voters))
        self.stats["transfers"] += 1
        self._process(leader)

    def leader(self) -> SimNode | None:
        """The live leader of the highest term, if any."""
        best: SimNode | None = None
        for node in self.live():
            assert node.core is not None
            if node.core.role is Role.LEADER and (
                best is None or best.core is None or node.core.term > best.core.term
            ):
                best = node
        return best

    # -- clients ------------------------------------------------------------------------------

    def _clients(self) -> None:
        if not self.idle_clients or self.next_op >= self.max_ops or self.rng.random() < 0.5:
            return
        live = self.live()
        if not live:
            return
        node = self.rng.choice(live)
        core = node.core
        assert core is not None
        kind = self.rng.choice(("get", "get", "add", "put"))
        op_id = self.next_op
        try:
            if kind == "get":
                context = op_id.to_bytes(8, "big")
                core.read_index(context)
                self.reads[context] = op_id
                inp: tuple[Any, ...] = ("get",)
            else:
                arg = self.rng.randint(1, 9) if kind == "add" else self.rng.randint(10, 99)
                core.propose(_encode(_Command(op_id, kind, arg)))
                inp = (kind, arg)
        except (NotLeader, ProposalDropped):
            return
        self.next_op += 1
        client = self.idle_clients.pop()
        self.clock += 1
        self.open_ops[op_id] = (client, node.id, self.clock, inp)
        self._process(node)

    def _answer_reads(self, node: SimNode) -> None:
        still: list[tuple[int, bytes]] = []
        for index, context in node.waiting_reads:
            if node.applied >= index:
                op_id = self.reads.pop(context, None)
                if op_id is not None and op_id in self.open_ops:
                    self._complete(op_id, node.value)
            else:
                still.append((index, context))
        node.waiting_reads = still

    def _complete(self, op_id: int, output: Any) -> None:
        client, _, call, inp = self.open_ops.pop(op_id)
        self.clock += 1
        self.history.append(Operation(client, call, self.clock, inp, output))
        self.idle_clients.append(client)

    def full_history(self) -> list[Operation]:
        pending = [Operation(c, call, None, inp) for c, _, call, inp in self.open_ops.values()]
        return self.history + pending

    # -- healing and liveness -----------------------------------------------------------------

    def heal(self) -> None:
        self.faults = Faults(max_delay=2, snapshot_after=self.faults.snapshot_after)
        self.blocked.clear()
        for node in self.nodes.values():
            if node.core is None:
                self._start(node)

    def await_progress(self, bound: int) -> int:
        """Ticks until a leader commits a new entry that every member applied; fails after
        ``bound`` ticks."""
        start = self.now
        probe_index: int | None = None
        probe_leader: SimNode | None = None
        while self.now - start < bound:
            self.step()
            leader = self.leader()
            if leader is None or leader.core is None:
                continue
            if probe_leader is not leader or probe_index is None:
                try:
                    probe_index = leader.core.propose(b"")
                except (NotLeader, ProposalDropped):
                    continue
                probe_leader = leader
                self._process(leader)
                continue
            members = leader.core.membership.members
            if (
                all(
                    self.nodes[m].core is not None and self.nodes[m].applied >= probe_index
                    for m in members
                )
                and leader.core.commit_index >= probe_index
            ):
                return self.now - start
        raise Violation(
            f"seed {self.seed}: no progress within {bound} ticks after healing ({self.describe()})"
        )

    def describe(self) -> str:
        parts = []
        for node in self.nodes.values():
            core = node.core
            if core is None:
                parts.append(f"{node.id.short()}:down")
            else:
                parts.append(
                    f"{node.id.short()}:{core.role.value}@{core.term} "
                    f"commit={core.commit_index} last={core.last_index} "
                    f"voters={len(core.membership.voters)}"
                )
        return "; ".join(parts)


def _decode_value(data: bytes) -> int:
    value = msgspec.msgpack.decode(data)
    if not isinstance(value, int):
        raise RaftError(f"bad simulated snapshot {data!r}")
    return value
