"""The shell of one group on one node: drives the Raft core over the transport.

One driver task owns the core. Everything else (frames from peers, proposals, reads, ticks of
the Raft clock, catalog changes) only queues an input and wakes it; the driver applies the
queued inputs (typed records of ``inputs``, in one ``match``: ``_apply_input``), then handles
each ``Ready`` in the order its fields demand: persist (in a worker thread for SQLite, so the
loop keeps receiving meanwhile: whatever arrives during one fsync goes into the next, which is
the group commit), restore a received snapshot, apply committed entries, answer confirmed
reads, send messages, ``advance``.

Membership follows discovery (``peers``, ``membership``): an empty node forms the first
configuration only as ``first_configuration`` decides; a leader proposes one change at a time
as ``next_change`` decides, on every tick. Lineages (whose messages may be stepped, rival
clusters) are ``lineage``'s business; what a group says to its peers is in ``exchange``;
callers' commands and reads go through ``client``. Those see the runtime only through the
Protocols of ``ports``.

When the driver fails (the storage refuses a write: a full disk; or anything else raises), the
group stops on this node but the process keeps running: it shows as stopped (``status``,
``stopped``), calls fail with ``GroupStopped``, inputs are refused, and the driver retries
after a backoff (``stopped``), re-opening the storage from disk and rebuilding the core from
what it holds; the state machine keeps what it applied (every applied entry was persisted
first). A failure while joining is raised by ``start`` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

from node._tasks import TaskScope
from node.errors import DecodeError
from node.groups import ids
from node.groups.config import ConsensusConfig
from node.groups.errors import GroupStopped, GroupTerminated
from node.groups.exchange import Exchange
from node.groups.inputs import (
    ConfirmRead,
    ForwardReceived,
    Input,
    LinkLost,
    MessageReceived,
    Propose,
    TransferLeadership,
)
from node.groups.lineage import Lineage, SnapshotEnvelope, envelope_decoder, scan_lineage
from node.groups.membership import MembershipView, first_configuration, next_change
from node.groups.peers import GroupPeers
from node.groups.pending import Assignment, Pending
from node.groups.ports import NodeContext
from node.groups.raft import (
    ConfChangeKind,
    CorruptStorage,
    Entry,
    EntryKind,
    HardState,
    InvalidConfChange,
    LeadershipPreference,
    Membership,
    MemoryStorage,
    Message,
    NotLeader,
    ProposalDropped,
    RaftError,
    RaftNode,
    Ready,
    Role,
    Snapshot,
    SnapshotOutOfDate,
    SqliteStorage,
    Storage,
    bootstrap,
)
from node.groups.state_machine import ApplyContext, StateMachine
from node.groups.stats import GroupStats
from node.groups.stopped import Stopped, backoff, classify
from node.groups.wire import (
    ClusterChanged,
    ClusterState,
    Forward,
    ForwardAccepted,
    ForwardRefused,
    Hello,
)
from node.primitives import Decoder, Digest, GroupId, PeerId, encode
from node.tickets import TicketValidator
from node.transport import FramedStream

log = logging.getLogger("mosaik.groups")


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """Everything ``join`` decided about a group."""

    gid: GroupId
    secret: Digest
    machine: StateMachine
    consensus: ConsensusConfig
    validators: tuple[TicketValidator, ...]
    bootstrap_expect: int
    max_voters: int
    preference: LeadershipPreference
    storage_path: Path | None


class GroupRuntime:
    """One group on this node; shared by every handle of the group on the node.

    It is the ``ExchangeHost`` of its exchange and the ``ClientHost`` of ``client``'s calls
    (``ports``); handles read it through its properties.
    """

    def __init__(self, node: NodeContext, spec: GroupSpec, storage: Storage, *, owns: bool) -> None:
        self.node = node
        self.spec = spec
        self.gid = spec.gid
        self.name = spec.gid.short()
        self.machine = spec.machine
        self.config = spec.consensus
        self._storage = storage
        self._owns_storage = owns
        self._raft_config = spec.consensus.raft_config(spec.preference)
        self._rng = random.Random()
        self._core = RaftNode(node.peer_id, storage, self._raft_config, self._rng)
        self._commands = Decoder(spec.machine.command_type)
        self.stats = GroupStats()
        self._pending = Pending()
        self.peers = GroupPeers(
            node.peer_id, spec.gid, ids.observer_marker(spec.gid), spec.validators
        )
        self.observer = not spec.preference.campaigns
        self.lineage = Lineage(ClusterState())
        self._tasks = TaskScope(f"group/{self.name}")
        self._exchange = Exchange(
            self,
            node,
            gid=spec.gid,
            secret=spec.secret,
            peers=self.peers,
            pending=self._pending,
            stats=self.stats,
            scope=self._tasks,
            name=self.name,
        )
        self._links = self._exchange.links
        self._executor = concurrent.futures.ThreadPoolExecutor(1, f"group-{self.name}")
        self._inputs: deque[Input] = deque()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._ticks = 0
        self._catalog_dirty = True
        self._yield_to: Digest | None = None
        self._started = time.monotonic()
        self._leader_since = self._started
        self._applied = 0
        self._snapshot_index = 0
        self.failure: BaseException | None = None
        """What stopped the group last (raised by ``start`` if it stops while joining)."""
        self.stopped: Stopped | None = None
        self._retries = 0
        """Retries since the group last stopped, until a storage write succeeds again."""
        self._stopped_since = 0.0
        self._joined = False
        self.closed = False

    # -- lifetime -----------------------------------------------------------------------------

    async def start(self) -> None:
        snapshot = self._storage.snapshot()
        if snapshot.index:
            self._restore(snapshot)
        else:
            self.lineage.set(scan_lineage(self._storage))
        self._applied = self._snapshot_index = snapshot.index
        self._tasks.spawn(self._drive(), "driver")
        self._tasks.spawn(self._tick(), "ticker")
        replayed = self._core.commit_index  # what the log says was committed: apply it first
        self._wake.set()
        try:
            await self.wait_for(lambda: self._applied >= replayed)
        except (GroupTerminated, GroupStopped):
            if self.failure is not None:
                raise self.failure from None
            raise
        self._joined = True

    def _restore(self, snapshot: Snapshot) -> None:
        """The state machine and lineage from a stored snapshot (``CorruptStorage`` if it is
        not a group snapshot)."""
        try:
            envelope = envelope_decoder.decode(snapshot.data)
        except DecodeError as exc:
            path = str(self.spec.storage_path) if self.spec.storage_path else None
            raise CorruptStorage(f"the snapshot is not a group snapshot: {exc}", path) from None
        self.machine.restore(envelope.machine)
        self.lineage.set(ClusterState(envelope.cluster, envelope.has_data))

    async def close(self) -> None:
        """Hand leadership to an up-to-date voter if we lead, then stop."""
        if self.closed:
            return
        if self.stopped is None and self._core.role is Role.LEADER:
            await self._transfer_before_close()
        self.closed = True
        self._pending.fail_all(lambda: GroupTerminated("the group closed on this node"))
        self._exchange.close()
        await self._tasks.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
        if self._owns_storage and isinstance(self._storage, SqliteStorage):
            self._storage.close()
        self._notify()

    async def _transfer_before_close(self) -> None:
        progress = self._core.follower_progress()
        voters = [p for p in self._core.membership.voters if p != self.node.peer_id]
        live = [p for p in voters if p in progress and self._links.is_up(p)]
        if not live:
            return
        target = max(live, key=lambda p: progress[p].match)
        self.submit(TransferLeadership(target))
        try:
            async with asyncio.timeout(self.config.election_timeout):
                await self.wait_for(lambda: self._core.role is not Role.LEADER)
        except TimeoutError:
            log.info("group %s: leadership transfer before close timed out", self.name)
        except GroupStopped:
            pass  # no leader to hand over from

    # -- stopping and recovering -------------------------------------------------------------

    def _stop(self, exc: Exception) -> None:
        """The driver failed: fail every waiting call and refuse inputs until ``_recover``."""
        reason = classify(exc)
        if self._retries == 0:
            log.error("group %s stopped (%s): %s", self.name, reason, exc, exc_info=exc)
            self._stopped_since = time.time()
        else:  # the last retry re-opened the storage but the cause is still there
            log.warning("group %s stopped again (%s): %s", self.name, reason, exc)
        self.failure = exc
        delay = backoff(self._retries, self._rng)
        self.stopped = Stopped(
            reason, str(exc), self._stopped_since, self._retries, time.monotonic() + delay
        )
        self.stats.stops[reason] = self.stats.stops.get(reason, 0) + 1
        self._pending.fail_all(lambda: self._stopped_error(maybe_applied=True))
        inputs, self._inputs = self._inputs, deque()
        for item in inputs:
            self._refuse(item)
        self._notify()

    def _stopped_error(self, *, maybe_applied: bool = False) -> GroupStopped:
        stopped = self.stopped
        assert stopped is not None
        return GroupStopped(
            f"the group stopped on this node ({stopped.reason}: {stopped.error}); "
            "it retries by itself",
            reason=stopped.reason,
            maybe_applied=maybe_applied,
        )

    def _refuse(self, item: Input) -> None:
        """Answer an input the stopped group cannot apply."""
        match item:
            case Propose(_, future) | ConfirmRead(_, future):
                if not future.done():
                    future.set_exception(self._stopped_error())
            case ForwardReceived(peer, forward):
                refusal = ForwardRefused(forward.request, None, "the group is stopped here")
                self._links.send(peer, encode(refusal))
            case MessageReceived() | LinkLost() | TransferLeadership():
                pass
            case _:
                assert_never(item)

    async def _recover(self) -> None:
        """Retry with backoff until the storage re-opens and the core is rebuilt from it."""
        while (stopped := self.stopped) is not None:
            await asyncio.sleep(max(0.0, stopped.next_retry - time.monotonic()))
            self._retries += 1
            try:
                await self._reopen()
            except Exception as exc:
                self.failure = exc
                retry = time.monotonic() + backoff(self._retries, self._rng)
                reason = classify(exc)
                self.stopped = Stopped(reason, str(exc), stopped.since, self._retries, retry)
                log.warning(
                    "group %s: retry %d failed (%s): %s", self.name, self._retries, reason, exc
                )
                self._notify()
                continue
            self.stopped = None
            self.stats.recoveries += 1
            log.warning(
                "group %s recovered after %d retries (stopped %.1f s)",
                self.name,
                self._retries,
                time.time() - stopped.since,
            )
        self._on_soft_state(None, Role.FOLLOWER)
        self._ticks = 0
        self._catalog_dirty = True
        self._wake.set()
        self._notify()

    async def _reopen(self) -> None:
        """The storage as it is on disk (a file we own is closed and opened again), and a core
        built from it; the state machine keeps what it applied."""
        storage, path = self._storage, self.spec.storage_path
        if self._owns_storage and isinstance(storage, SqliteStorage) and path is not None:
            await self._run_storage(storage.close)
            storage = await self._run_storage(SqliteStorage, path)
            self._storage = storage
        core = RaftNode(self.node.peer_id, storage, self._raft_config, self._rng)
        snapshot = storage.snapshot()
        if snapshot.index > self._applied:  # stored, but the failure came before installing it
            self._restore(snapshot)
            self._applied = snapshot.index
            self._pending.skipped_to(snapshot.index)
        self._snapshot_index = snapshot.index
        self._core = core

    # -- state watching -----------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Until ``condition()`` holds; ``GroupTerminated`` if the group closes first,
        ``GroupStopped`` if it stops."""
        while not condition():
            self.check_running()
            await self._changed.wait()

    def check_running(self) -> None:
        if self.closed:
            raise GroupTerminated("the group is closed on this node")
        if self.stopped is not None:
            raise self._stopped_error()

    # -- reading the state (handles, metrics, tests) -------------------------------------

    @property
    def core(self) -> RaftNode:
        """The Raft core, for inspection: only the driver changes it."""
        return self._core

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def pending(self) -> Pending:
        return self._pending

    @property
    def peer_id(self) -> PeerId:
        return self.node.peer_id

    @property
    def leader(self) -> PeerId | None:
        return None if self.stopped is not None else self._core.leader

    @property
    def role(self) -> Role:
        """The core's role; a stopped group follows no one (``stopped`` says why)."""
        return Role.FOLLOWER if self.stopped is not None else self._core.role

    @property
    def term(self) -> int:
        return self._core.term

    @property
    def membership(self) -> Membership:
        return self._core.membership

    @property
    def commit_index(self) -> int:
        return self._core.commit_index

    @property
    def last_index(self) -> int:
        return self._core.last_index

    def term_at(self, index: int) -> int | None:
        return self._core.term_at(index)

    @property
    def applied(self) -> int:
        return self._applied

    @property
    def online(self) -> bool:
        return self.leader is not None and self.node.peer_id in self._core.membership

    @property
    def cluster(self) -> ClusterState:
        return self.lineage.cluster

    @property
    def frames_sent(self) -> int:
        return self._links.frames_sent

    @property
    def frames_dropped(self) -> int:
        return self._links.frames_dropped

    def status(self) -> dict[str, Any]:
        core = self._core
        membership = core.membership
        lineage = self.lineage
        leader = self.leader
        status: dict[str, Any] = {
            "group_id": self.gid.hex(),
            "role": "stopped" if self.stopped is not None else core.role.value,
            "term": core.term,
            "leader": leader.hex() if leader else None,
            "voters": [p.hex() for p in membership.voters],
            "learners": [p.hex() for p in membership.learners],
            "commit_index": core.commit_index,
            "applied_index": self._applied,
            "last_index": core.last_index,
            "cluster": lineage.cluster.id.hex() if lineage.cluster.id else None,
            "rivals": sorted({c.hex() for c in lineage.rivals.values()}),
            "refused_by": {p.hex(): reason for p, reason in sorted(self._links.refusals.items())},
        }
        if self.stopped is not None:
            status["stopped"] = self.stopped.describe(time.monotonic())
        describe = getattr(self.machine, "status", None)
        if callable(describe):
            status["state"] = describe()
        return status

    # -- the peers' side (``exchange``) and the callers' (``client``) ----------------------

    async def serve(self, peer: PeerId, stream: FramedStream, hello: Hello) -> None:
        """Admit ``peer``'s inbound stream and read its frames until it ends."""
        await self._exchange.serve(peer, stream, hello)

    def accepts(self, peer: PeerId) -> bool:
        return self.lineage.accepts(self.peers.clusters.get(peer))

    def linked(self, peer: PeerId) -> bool:
        return peer in self._links

    def send(self, peer: PeerId, body: bytes) -> bool:
        return self._links.send(peer, body)

    # -- inputs -------------------------------------------------------------------------------

    def submit(self, item: Input) -> None:
        """Queue ``item`` for the driver, which applies it in ``_apply_input`` (refused at once
        while the group is stopped)."""
        if self.stopped is not None:
            self._refuse(item)
            return
        self._inputs.append(item)
        self._wake.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval)
            self._ticks += 1
            self._wake.set()

    def catalog_changed(self) -> None:
        self._catalog_dirty = True
        self._wake.set()

    # -- the driver ---------------------------------------------------------------------------

    async def _drive(self) -> None:
        while True:
            try:
                while True:
                    await self._wake.wait()
                    self._wake.clear()
                    await self._process()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._stop(exc)
            if not self._joined:
                return  # ``start`` raises the failure
            await self._recover()

    async def _process(self) -> None:
        if self._catalog_dirty:
            self._refresh_peers()
        ticks, self._ticks = self._ticks, 0
        for _ in range(ticks):
            self._core.tick()
        if ticks:
            await self._on_tick()
        self._step_inputs()
        core = self._core
        while core.has_ready():
            await self._handle(core.ready())
            self._step_inputs()
        if self._yield_to is not None:
            await self._yield_lineage()
        await self._maybe_compact()

    def _step_inputs(self) -> None:
        inputs = self._inputs
        while inputs:
            self._apply_input(inputs.popleft())

    def _apply_input(self, item: Input) -> None:
        core = self._core
        match item:
            case MessageReceived(message):
                core.step(message)
            case ForwardReceived(peer, forward):
                self._links.send(peer, encode(self._serve_forward(peer, forward)))
            case LinkLost(peer):
                core.report_unreachable(peer)
            case Propose(datas, future):
                if future.done():
                    return
                try:
                    assignment = self._propose(datas)
                except (NotLeader, ProposalDropped) as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(assignment)
            case ConfirmRead(context, future):
                try:
                    core.read_index(context)
                except NotLeader as exc:
                    self._pending.read_done(context)
                    if not future.done():
                        future.set_exception(exc)
            case TransferLeadership(target):
                try:
                    core.transfer_leader(target)
                except RaftError as exc:
                    log.debug("group %s: %s", self.name, exc)
            case _:
                assert_never(item)

    def _propose(self, datas: tuple[bytes, ...]) -> Assignment:
        """Append ``datas`` at consecutive indices (``NotLeader``, ``ProposalDropped``)."""
        core = self._core
        first = core.propose(datas[0])
        for data in datas[1:]:
            core.propose(data)
        self.stats.proposals += len(datas)
        return Assignment(first, core.term)

    def _serve_forward(self, peer: PeerId, forward: Forward) -> ForwardAccepted | ForwardRefused:
        """Append a follower's commands if we lead; the answer to send it either way."""
        if not forward.commands:
            return ForwardRefused(forward.request, self._core.leader, "no commands")
        if not self.accepts(peer):
            return ForwardRefused(forward.request, None, "the sender is in a rival cluster")
        try:
            assignment = self._propose(forward.commands)
        except NotLeader as exc:
            return ForwardRefused(forward.request, exc.leader, str(exc))
        except ProposalDropped as exc:
            return ForwardRefused(forward.request, self._core.id, str(exc))
        return ForwardAccepted(forward.request, assignment.index, assignment.term)

    async def _handle(self, rd: Ready) -> None:
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state.leader, rd.soft_state.role)
        if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
            await self._run_storage(
                self._storage.save, rd.hard_state, list(rd.entries), rd.snapshot
            )
            self._retries = 0  # the storage writes again: the next stop starts its backoff anew
        if rd.hard_state is not None:
            self.stats.saw_hard_state(rd.hard_state, self.node.peer_id)
        if rd.snapshot is not None:
            self._install(rd.snapshot)
        if rd.entries:
            self._entries_persisted(rd.entries)
        for entry in rd.committed_entries:
            self._apply(entry)
        if rd.committed_entries:
            self._pending.release_reads(self._applied)
        for read in rd.read_states:
            self._pending.read_confirmed(read.context, read.index, self._applied)
        self._send(rd.messages)
        self._core.advance(rd)
        self._notify()

    async def _run_storage(self, call: Callable[..., Any], *args: Any) -> Any:
        """A storage write: inline in memory, on the group's worker thread for files."""
        if isinstance(self._storage, MemoryStorage):
            return call(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    def _on_soft_state(self, leader: PeerId | None, role: Role) -> None:
        if leader != self.stats.leader:
            self.stats.leader_changes += 1
            self._pending.leader_changed()
            who = leader.short() if leader else "unknown"
            log.info("group %s: leader is %s (term %d)", self.name, who, self._core.term)
        self.stats.leader = leader
        if role is Role.LEADER and self.stats.role is not Role.LEADER:
            self._leader_since = time.monotonic()
        self.stats.role = role

    def _entries_persisted(self, entries: Iterable[Entry]) -> None:
        cluster = self.lineage.cluster
        first = next((e for e in entries if e.index == 1), None)
        has_data = cluster.has_data or any(e.kind is EntryKind.COMMAND for e in entries)
        new_id = ids.cluster_id(first) if first is not None else cluster.id
        if new_id != cluster.id or has_data != cluster.has_data:
            self._set_cluster(ClusterState(new_id, has_data))

    def _install(self, snapshot: Snapshot) -> None:
        envelope = envelope_decoder.decode(snapshot.data)
        self.machine.restore(envelope.machine)
        self._applied = self._snapshot_index = snapshot.index
        self._pending.skipped_to(snapshot.index)
        self.stats.snapshots_installed += 1
        cluster = ClusterState(envelope.cluster, envelope.has_data)
        if cluster != self.lineage.cluster:
            self._set_cluster(cluster)

    def _apply(self, entry: Entry) -> None:
        if entry.index <= self._applied:
            return  # a core rebuilt after a stop hands out again what the machine applied
        result: Any = None
        if entry.kind is EntryKind.COMMAND:
            try:
                command = self._commands.decode(entry.data)
            except DecodeError as exc:
                log.error("group %s: entry %d is not a command: %s", self.name, entry.index, exc)
            else:
                result = self.machine.apply(command, ApplyContext(entry.index, entry.term))
                self.stats.commands_applied += 1
        self._applied = entry.index
        self._pending.applied(entry.index, entry.term, result)

    def _send(self, messages: Iterable[Message]) -> None:
        links, rivals = self._links, self.lineage.rivals
        for msg in messages:
            if msg.to in rivals or not links.send(msg.to, encode(msg)):
                log.debug("group %s: no link to %s for %s", self.name, msg.to.short(), msg)

    async def _maybe_compact(self) -> None:
        cluster = self.lineage.cluster
        if self._applied - self._snapshot_index < self.config.snapshot_every or cluster.id is None:
            return
        if self._core.applied_index != self._applied:
            return  # a rebuilt core is still handing out entries the machine applied before
        meta = self._core.snapshot_meta()
        envelope = SnapshotEnvelope(cluster.id, cluster.has_data, self.machine.snapshot())
        try:
            await self._run_storage(self._storage.compact, Snapshot(meta, encode(envelope)))
        except SnapshotOutOfDate:
            pass
        self._snapshot_index = meta.index
        self.stats.snapshots_taken += 1

    # -- ticks: membership, bootstrap, expiries -----------------------------------------------

    async def _on_tick(self) -> None:
        now = time.time()
        deadline = self.peers.next_deadline()
        if deadline is not None and deadline <= now and self.peers.expired(now):
            self._refresh_peers()
        if self.lineage.cluster.id is None and self._core.last_index == 0:
            await self._maybe_bootstrap()
        elif self._core.role is Role.LEADER:
            self._plan_membership()
        bound = self.lineage.bound
        if bound is not None and not any(s.id == bound for s in self.peers.clusters.values()):
            self.lineage.bound = None  # the lineage we followed is gone before it reached us

    def _refresh_peers(self) -> None:
        self._catalog_dirty = False
        added, removed = self.peers.refresh(
            self.node.discovery.catalog, time.time(), time.monotonic()
        )
        for peer in added:
            self._links.ensure(peer)
        for peer in removed:
            self._links.drop(peer)
            self.lineage.rivals.pop(peer, None)
            self._exchange.end_inbound(peer, "no longer a member candidate")

    def _plan_membership(self) -> None:
        core, peers = self._core, self.peers
        now = time.monotonic()
        membership = core.membership
        rivals = self.lineage.rivals
        view = MembershipView(
            leader=self.node.peer_id,
            membership=membership,
            candidates={
                p: peers.candidate(p)
                for p in peers.candidates
                if p not in rivals and peers.addable(p)
            },
            revoked=set(peers.revoked),
            absent_for={
                p: peers.absent_for(p, now, self._leader_since) for p in membership.members
            },
            progress=core.follower_progress(),
            commit=core.commit_index,
        )
        change = next_change(
            view,
            max_voters=self.spec.max_voters,
            member_timeout=self.config.member_timeout,
            catch_up_lag=self.config.max_entries_per_message,
        )
        if change is None:
            return
        try:
            core.propose_conf_change(change)
            self.stats.conf_changes += 1
            if change.kind is ConfChangeKind.REMOVE:
                peers.removed_at[change.node] = now
        except (ProposalDropped, InvalidConfChange, NotLeader) as exc:
            log.debug("group %s: configuration change %s deferred: %s", self.name, change, exc)

    async def _maybe_bootstrap(self) -> None:
        if time.monotonic() - self._started < self.config.bootstrap_delay:
            return
        membership = first_configuration(
            self.node.peer_id,
            self.observer,
            {p: self.peers.candidate(p) for p in self.peers.candidates},
            self.spec.bootstrap_expect,
            self.spec.max_voters,
        )
        if membership is None:
            return
        voters = [p.short() for p in membership.voters]
        log.info("group %s: forming the first configuration with %s", self.name, voters)
        hard, _ = self._storage.initial_state()
        if hard.term == 0:
            await self._run_storage(bootstrap, self._storage, membership)
        else:  # an emptied lineage keeps its term and vote
            first = Entry(1, 1, EntryKind.CONFIG, encode(membership))
            await self._run_storage(self._storage.save, None, [first], None)
        self._core = RaftNode(self.node.peer_id, self._storage, self._raft_config, self._rng)
        self._set_cluster(ClusterState(ids.cluster_id(self._storage.entries(1, 2)[0]), False))
        self._core.campaign()

    # -- lineages -----------------------------------------------------------------------------

    def note_cluster(self, peer: PeerId, state: ClusterState) -> None:
        self.peers.clusters[peer] = state
        self._compare(peer, state)

    def _set_cluster(self, cluster: ClusterState) -> None:
        self.lineage.set(cluster)
        self._links.broadcast(encode(ClusterChanged(cluster)))
        for peer, state in list(self.peers.clusters.items()):
            self._compare(peer, state)

    def _compare(self, peer: PeerId, state: ClusterState) -> None:
        ours = self.lineage.cluster
        verdict = self.lineage.compare(peer, state)
        if verdict.rival_gone:
            log.info("group %s: %s left its rival cluster", self.name, peer.short())
        if verdict.new_rival and state.id is not None and ours.id is not None:
            self.stats.rivals_detected += 1
            log.warning(
                "group %s: peer %s is in rival cluster %s (%s) beside ours %s (%s)",
                self.name,
                peer.short(),
                state.id.short(),
                "with commands" if state.has_data else "no commands",
                ours.id.short(),
                "with commands" if ours.has_data else "no commands",
            )
            if verdict.deadlock:
                log.error(
                    "group %s: rival clusters %s and %s both hold commands: not merging them, "
                    "which would discard committed data; an operator must retire one",
                    self.name,
                    ours.id.short(),
                    state.id.short(),
                )
        if verdict.yield_to is not None and self._owns_storage:
            self._yield_to = verdict.yield_to
            self._wake.set()

    async def _yield_lineage(self) -> None:
        winner, self._yield_to = self._yield_to, None
        ours = self.lineage.cluster
        if winner is None or ours.has_data or ours.id is None:
            return
        log.warning(
            "group %s: our cluster %s holds no commands: emptying the log to join rival %s",
            self.name,
            ours.id.short(),
            winner.short(),
        )
        hard, _ = self._storage.initial_state()
        term, vote = max(hard.term, self._core.term), self._core.vote
        self._storage = await self._run_storage(self._empty_storage)
        await self._run_storage(self._storage.save, HardState(term, vote, 0), [], None)
        self._core = RaftNode(self.node.peer_id, self._storage, self._raft_config, self._rng)
        self._applied = self._snapshot_index = 0
        self.stats.lineages_abandoned += 1
        self.lineage.abandoned(winner)
        self._links.broadcast(encode(ClusterChanged(self.lineage.cluster)))
        self._on_soft_state(None, Role.FOLLOWER)
        for peer, state in list(self.peers.clusters.items()):
            self._compare(peer, state)

    def _empty_storage(self) -> Storage:
        old, path = self._storage, self.spec.storage_path
        if isinstance(old, SqliteStorage) and path is not None:
            old.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return SqliteStorage(path)
        return MemoryStorage()
