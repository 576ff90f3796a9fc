"""The Raft core: a synchronous state machine with no I/O, clock or randomness of its own.

Inputs: ``tick()`` (a logical clock), ``step(message)``, and the API calls ``propose``,
``propose_conf_change``, ``read_index``, ``transfer_leader``. Output: ``ready()`` returns a
``Ready`` whose fields say what to persist before what is sent (see ``Ready``); ``advance()``
acknowledges it. Standard Raft (Ongaro's thesis) with pre-vote (9.6), check-quorum and the
leader lease against disruptive servers (6.2, 4.2.3), leadership transfer (3.10), ReadIndex
(6.4), learners, single-server membership changes (4.1) and snapshots (5).

Two choices worth knowing:
- The leader counts its own log toward a commit only up to what it has persisted, i.e. what
  the shell acknowledged with ``advance()``; there is no "leader writes in parallel" shortcut.
- A configuration takes effect as soon as its entry is appended, and a leader proposes a new
  one only after the previous one and an entry of its own term are committed.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Sequence

from node.errors import DecodeError
from node.groups.raft.config import RaftConfig
from node.groups.raft.errors import (
    Compacted,
    CorruptStorage,
    InvalidConfChange,
    NotLeader,
    ProposalDropped,
    Unavailable,
    UsageError,
)
from node.groups.raft.log import RaftLog
from node.groups.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode_membership,
    problem,
)
from node.groups.raft.progress import Progress, ProgressState
from node.groups.raft.reads import PendingRead, ReadQueue
from node.groups.raft.ready import FollowerProgress, ReadState, Ready, Role, SoftState
from node.groups.raft.records import (
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Membership,
    SnapshotMeta,
)
from node.groups.raft.storage import Storage
from node.primitives import PeerId, encode

logger = logging.getLogger("node.groups.raft")


class _Vote(enum.Enum):
    PENDING = 0
    WON = 1
    LOST = 2


def bootstrap(storage: Storage, membership: Membership) -> None:
    """Write the first configuration into an empty log, as entry 1 of term 1.

    Either one node bootstraps and the others start empty (they follow whoever leads), or
    every initial member bootstraps with the same membership; both are consistent logs.
    """
    hard, meta = storage.initial_state()
    if storage.last_index() != 0 or meta.index != 0 or hard.term != 0:
        raise UsageError("bootstrap needs an empty log")
    if not membership.voters:
        raise InvalidConfChange("the first configuration needs at least one voter")
    first = Entry(1, 1, EntryKind.CONFIG, encode(membership))
    storage.save(HardState(term=1), [first], None)


class RaftNode:
    """One member of a Raft group, driven by its shell. Not thread-safe."""

    def __init__(
        self, node_id: PeerId, storage: Storage, config: RaftConfig, rng: random.Random
    ) -> None:
        hard, meta = storage.initial_state()
        self._id = node_id
        self._name = node_id.short()
        self._config = config
        self._rng = rng
        self._log = RaftLog(storage, hard.commit)
        self._term = hard.term
        self._vote = hard.vote
        self._leader: PeerId | None = None
        self._role = Role.FOLLOWER
        self._configs: list[tuple[int, Membership]] = [(meta.index, meta.membership)]
        self._configs += _configs_in(self._log)
        self._membership = self._configs[-1][1]
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._timeout = self._random_timeout()
        self._progress: dict[PeerId, Progress] = {}
        self._self_match = 0
        self._votes: dict[PeerId, bool] = {}
        self._transferee: PeerId | None = None
        self._pending_conf_index = 0
        self._reads = ReadQueue()
        self._reads_waiting: list[tuple[bytes, PeerId]] = []
        self._to_send: dict[PeerId, bool] = {}  # peer -> send an append even if empty
        self._messages: list[Message] = []
        self._read_states: list[ReadState] = []
        self._prev_hard = hard
        self._prev_soft = SoftState(None, Role.FOLLOWER)
        self._outstanding: Ready | None = None

    # -- introspection ------------------------------------------------------------------------

    @property
    def id(self) -> PeerId:
        return self._id

    @property
    def term(self) -> int:
        return self._term

    @property
    def vote(self) -> PeerId | None:
        return self._vote

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader(self) -> PeerId | None:
        return self._leader

    @property
    def commit_index(self) -> int:
        return self._log.committed

    @property
    def applied_index(self) -> int:
        """The last index handed out for applying (applied once the Ready is handled)."""
        return self._log.applied

    @property
    def last_index(self) -> int:
        return self._log.last_index()

    @property
    def first_index(self) -> int:
        return self._log.first_index()

    @property
    def membership(self) -> Membership:
        """The latest configuration in the log (in effect since it was appended)."""
        return self._membership

    @property
    def is_learner(self) -> bool:
        return self._id in self._membership.learners

    @property
    def transferee(self) -> PeerId | None:
        return self._transferee

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``, None if it was compacted or does not exist."""
        try:
            return self._log.term(index)
        except (Compacted, Unavailable):
            return None

    def follower_progress(self) -> dict[PeerId, FollowerProgress]:
        """The leader's view of its followers (empty on other nodes)."""
        return {
            peer: FollowerProgress(
                pr.match, pr.next, pr.state.value, pr.is_learner, pr.recent_active
            )
            for peer, pr in self._progress.items()
        }

    def snapshot_meta(self) -> SnapshotMeta:
        """Metadata for a snapshot of the state machine as of the applied index.

        The shell takes ``Snapshot(node.snapshot_meta(), state_machine_bytes)`` after applying
        a Ready and hands it to ``Storage.compact``.
        """
        applied = self._log.applied
        return SnapshotMeta(applied, self._log.term(applied), self._membership_at(applied))

    # -- inputs -------------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance the logical clock by one tick."""
        if self._role is Role.LEADER:
            self._tick_leader()
            return
        self._election_elapsed += 1
        if self._election_elapsed >= self._timeout and self._promotable():
            self._campaign(pre_vote=self._config.pre_vote, transfer=False)

    def campaign(self) -> None:
        """Start an election now (as if the election timeout elapsed), if this node may lead."""
        if self._role is not Role.LEADER and self._promotable():
            self._campaign(pre_vote=self._config.pre_vote, transfer=False)

    def propose(self, data: bytes) -> int:
        """Append a command; returns its index. ``NotLeader`` or ``ProposalDropped``."""
        self._check_accepting()
        index = self._log.last_index() + 1
        self._append([Entry(index, self._term, EntryKind.COMMAND, data)])
        return index

    def propose_conf_change(self, change: ConfChange) -> int:
        """Append a configuration entry for one added, promoted or removed member."""
        self._check_accepting()
        if self._pending_conf_index > self._log.committed:
            raise ProposalDropped(
                f"the configuration change at {self._pending_conf_index} is not committed yet"
            )
        try:
            membership = change.apply_to(self._membership)
        except ValueError as exc:
            raise InvalidConfChange(str(exc)) from None
        index = self._log.last_index() + 1
        self._pending_conf_index = index
        self._append([Entry(index, self._term, EntryKind.CONFIG, encode(membership))])
        logger.info(
            "raft %s: proposed %s %s at %d",
            self._name,
            change.kind.name,
            change.node.short(),
            index,
        )
        return index

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read identified by ``context`` (unique per pending read).

        A ``ReadState`` with this context appears in a later Ready once the leader confirmed
        its leadership; followers forward the request to the leader. Reads lost to a leader
        change never complete: the caller retries after a timeout.
        """
        if self._role is Role.LEADER:
            self._leader_read(context, self._id)
        elif self._leader is None:
            raise NotLeader(None)
        else:
            self._send(ReadIndexRequest(self._term, self._id, self._leader, context))

    def transfer_leader(self, to: PeerId) -> None:
        """Hand leadership to voter ``to`` once its log is up to date (thesis 3.10).

        Proposals are refused until the transfer completes or an election timeout passes.
        """
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader)
        if to == self._id:
            self._transferee = None
            return
        if to not in self._membership.voters:
            raise ProposalDropped(f"cannot transfer leadership to {to.short()}: not a voter")
        if self._transferee == to:
            return
        logger.info("raft %s: transferring leadership to %s", self._name, to.short())
        self._transferee = to
        self._election_elapsed = 0  # the transfer is abandoned after one election timeout
        if self._progress[to].match == self._log.last_index():
            self._send(TimeoutNow(self._term, self._id, to))
        else:
            self._to_send[to] = True

    def report_unreachable(self, peer: PeerId) -> None:
        """The shell could not deliver to ``peer``: stop pipelining to it and probe instead."""
        pr = self._progress.get(peer)
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, peer: PeerId, *, delivered: bool) -> None:
        """Outcome of sending an ``InstallSnapshot`` to ``peer``, if the shell knows it."""
        pr = self._progress.get(peer)
        if pr is not None and pr.state is ProgressState.SNAPSHOT:
            if not delivered:
                pr.pending_snapshot = 0
            pr.become_probe()
            pr.probe_sent = delivered  # wait for the follower's answer

    def step(self, msg: Message) -> None:
        """Feed a message from a peer. Malformed or misaddressed messages are logged and
        dropped; messages of an older term are dropped (or answered so the sender learns)."""
        reason = problem(msg)
        if reason is None and msg.to != self._id:
            reason = f"addressed to {msg.to.short()}"
        if reason is None and msg.sender == self._id:
            reason = "sent by this node"
        if reason is not None:
            logger.warning(
                "raft %s: dropped malformed %s: %s", self._name, type(msg).__name__, reason
            )
            return
        if msg.term > self._term and not self._on_higher_term(msg):
            return
        if msg.term < self._term:
            self._on_lower_term(msg)
            return
        self._dispatch(msg)

    # -- Ready / Advance ----------------------------------------------------------------------

    def has_ready(self) -> bool:
        """Whether ``ready()`` has work; False while a Ready awaits ``advance()``."""
        if self._outstanding is not None:
            return False
        self._flush()
        log = self._log
        return bool(
            self._messages
            or self._read_states
            or log.has_unstable()
            or log.pending_snapshot() is not None
            or log.has_committed_to_apply()
            or HardState(self._term, self._vote, log.committed) != self._prev_hard
            or SoftState(self._leader, self._role) != self._prev_soft
        )

    def ready(self) -> Ready:
        """The next batch of work; see ``Ready`` for the order in which to handle it."""
        if self._outstanding is not None:
            raise UsageError("ready() called again before advance() of the previous Ready")
        self._flush()
        log = self._log
        snapshot = log.pending_snapshot()
        if snapshot is not None:
            log.applied = max(log.applied, snapshot.index)
        entries = log.unstable_entries()
        hard = HardState(self._term, self._vote, log.committed)
        soft = SoftState(self._leader, self._role)
        prev = self._prev_hard
        ready = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != prev else None,
            snapshot=snapshot,
            entries=entries,
            committed_entries=tuple(log.take_committed(self._config.max_apply_bytes)),
            read_states=tuple(self._read_states),
            messages=tuple(self._messages),
            must_sync=bool(entries)
            or snapshot is not None
            or hard.term != prev.term
            or hard.vote != prev.vote,
        )
        self._prev_hard, self._prev_soft = hard, soft
        self._messages, self._read_states = [], []
        self._outstanding = ready
        return ready

    def advance(self, ready: Ready) -> None:
        """Acknowledge that ``ready`` was persisted and applied."""
        if ready is not self._outstanding:
            raise UsageError("advance() of a Ready that is not the outstanding one")
        self._outstanding = None
        if ready.snapshot is not None:
            self._log.stable_snapshot_to(ready.snapshot.index)
        if ready.entries:
            last = ready.entries[-1]
            self._log.stable_to(last.index, last.term)
        if self._role is Role.LEADER:
            stable = self._log.stable_last_index()
            if stable > self._self_match:
                self._self_match = stable
                self._maybe_commit()

    # -- roles --------------------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self._term:
            self._term = term
            self._vote = None
        self._leader = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._timeout = self._random_timeout()
        self._votes = {}
        self._transferee = None
        self._progress = {}
        self._to_send = {}
        self._reads.clear()
        self._reads_waiting = []

    def _become_follower(self, term: int, leader: PeerId | None) -> None:
        self._reset(term)
        self._role = Role.FOLLOWER
        self._leader = leader

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._role = Role.LEADER
        self._leader = self._id
        last = self._log.last_index()
        for peer in self._membership.members:
            if peer != self._id:
                self._add_progress(peer, last + 1)
        self._self_match = self._log.stable_last_index()
        self._append([Entry(last + 1, self._term, EntryKind.NOOP)])
        self._pending_conf_index = last + 1
        logger.info("raft %s: became leader in term %d", self._name, self._term)

    def _add_progress(self, peer: PeerId, next_index: int) -> None:
        is_learner = peer not in self._membership.voters
        self._progress[peer] = Progress(
            next_index, self._config.max_inflight, is_learner=is_learner
        )
        self._to_send[peer] = False

    def _promotable(self) -> bool:
        return (
            self._id in self._membership.voters
            and self._config.preference.campaigns
            and self._log.pending_snapshot() is None
        )

    def _random_timeout(self) -> int:
        base = self._config.election_ticks * self._config.preference.factor
        return base + self._rng.randrange(base)

    def _check_accepting(self) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader)
        if self._transferee is not None:
            raise ProposalDropped(f"leadership is being transferred to {self._transferee.short()}")

    # -- elections ----------------------------------------------------------------------------

    def _campaign(self, *, pre_vote: bool, transfer: bool) -> None:
        if pre_vote:
            self._role = Role.PRE_CANDIDATE
            self._leader = None
            self._votes = {}
            self._election_elapsed = 0
            self._timeout = self._random_timeout()
            term = self._term + 1
        else:
            self._reset(self._term + 1)
            self._role = Role.CANDIDATE
            self._vote = self._id
            term = self._term
        logger.debug(
            "raft %s: %s for term %d",
            self._name,
            "pre-campaigning" if pre_vote else "campaigning",
            term,
        )
        if self._poll(self._id, granted=True) is _Vote.WON:  # the only voter
            if pre_vote:
                self._campaign(pre_vote=False, transfer=transfer)
            else:
                self._become_leader()
            return
        last_index, last_term = self._log.last_index(), self._log.last_term()
        for voter in self._membership.voters:
            if voter != self._id:
                self._send(
                    VoteRequest(term, self._id, voter, last_index, last_term, pre_vote, transfer)
                )

    def _poll(self, peer: PeerId, *, granted: bool) -> _Vote:
        self._votes.setdefault(peer, granted)
        voters = self._membership.voters
        yes = sum(1 for v in voters if self._votes.get(v) is True)
        no = sum(1 for v in voters if self._votes.get(v) is False)
        quorum = self._membership.quorum
        if yes >= quorum:
            return _Vote.WON
        if no > len(voters) - quorum:
            return _Vote.LOST
        return _Vote.PENDING

    def _handle_vote_request(self, m: VoteRequest) -> None:
        can_vote = (
            self._vote == m.sender
            or (self._vote is None and self._leader is None)
            or (m.pre_vote and m.term > self._term)
        )
        if can_vote and self._log.is_up_to_date(m.last_index, m.last_term):
            self._send(VoteResponse(m.term, self._id, m.sender, True, m.pre_vote))
            if not m.pre_vote:
                self._election_elapsed = 0
                self._vote = m.sender
        else:
            self._send(VoteResponse(self._term, self._id, m.sender, False, m.pre_vote))

    def _handle_vote_response(self, m: VoteResponse) -> None:
        if m.pre_vote != (self._role is Role.PRE_CANDIDATE):
            return
        if m.pre_vote and m.granted and m.term != self._term + 1:
            return  # a grant from an earlier pre-campaign
        result = self._poll(m.sender, granted=m.granted)
        if result is _Vote.WON:
            if m.pre_vote:
                self._campaign(pre_vote=False, transfer=False)
            else:
                self._become_leader()
        elif result is _Vote.LOST:
            self._become_follower(self._term, None)

    # -- message dispatch ---------------------------------------------------------------------

    def _on_higher_term(self, m: Message) -> bool:
        """Adopt a newer term unless the message must not disturb us; False to drop it."""
        if isinstance(m, VoteRequest):
            in_lease = (
                self._config.check_quorum
                and self._leader is not None
                and self._election_elapsed < self._config.election_ticks
            )
            if in_lease and not m.transfer:
                logger.debug(
                    "raft %s: ignored a vote request from %s for term %d: leader %s is live",
                    self._name,
                    m.sender.short(),
                    m.term,
                    self._leader.short() if self._leader else None,
                )
                return False
            if m.pre_vote:
                return True  # a pre-vote never changes anyone's term
        elif isinstance(m, VoteResponse) and m.pre_vote and m.granted:
            return True
        leader = m.sender if isinstance(m, AppendEntries | Heartbeat | InstallSnapshot) else None
        logger.debug(
            "raft %s: term %d -> %d on %s from %s",
            self._name,
            self._term,
            m.term,
            type(m).__name__,
            m.sender.short(),
        )
        self._become_follower(m.term, leader)
        return True

    def _on_lower_term(self, m: Message) -> None:
        if isinstance(m, AppendEntries | Heartbeat):
            # A leader of an older term: answer so it learns our term and steps down (it may
            # be a node whose term we cannot otherwise reach while vote requests are ignored).
            self._send(AppendResponse(self._term, self._id, m.sender, False, 0))
        elif isinstance(m, VoteRequest) and m.pre_vote:
            self._send(VoteResponse(self._term, self._id, m.sender, False, True))
        else:
            logger.debug(
                "raft %s: dropped %s from %s of stale term %d < %d",
                self._name,
                type(m).__name__,
                m.sender.short(),
                m.term,
                self._term,
            )

    def _dispatch(self, m: Message) -> None:
        if isinstance(m, VoteRequest):
            self._handle_vote_request(m)
        elif isinstance(m, VoteResponse):
            self._handle_vote_response(m)
        elif isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
            if self._role is Role.LEADER:
                logger.error(
                    "raft %s: another leader %s in term %d", self._name, m.sender.short(), m.term
                )
                return
            if self._role is not Role.FOLLOWER:
                self._become_follower(self._term, m.sender)
            self._leader = m.sender
            self._election_elapsed = 0
            if isinstance(m, AppendEntries):
                self._handle_append(m)
            elif isinstance(m, Heartbeat):
                self._handle_heartbeat(m)
            else:
                self._handle_snapshot(m)
        elif isinstance(m, AppendResponse | HeartbeatResponse):
            pr = self._progress.get(m.sender) if self._role is Role.LEADER else None
            if pr is None:
                return
            pr.recent_active = True
            if isinstance(m, AppendResponse):
                self._handle_append_response(m, pr)
            else:
                self._handle_heartbeat_response(m, pr)
        elif isinstance(m, TimeoutNow):
            if self._role is not Role.LEADER and self._promotable():
                logger.info(
                    "raft %s: campaigning for a leadership transfer from %s",
                    self._name,
                    m.sender.short(),
                )
                self._campaign(pre_vote=False, transfer=True)
            else:
                logger.info(
                    "raft %s: declined a leadership transfer from %s", self._name, m.sender.short()
                )
        elif isinstance(m, ReadIndexRequest):
            if self._role is Role.LEADER:
                self._leader_read(m.context, m.sender)
        else:
            self._read_states.append(ReadState(m.index, m.context))

    # -- follower side ------------------------------------------------------------------------

    def _handle_append(self, m: AppendEntries) -> None:
        log = self._log
        if m.prev_index < log.committed:
            self._send(AppendResponse(self._term, self._id, m.sender, True, log.committed))
            return
        if not log.match_term(m.prev_index, m.prev_term):
            hint_index, hint_term = log.find_conflict_by_term(
                min(m.prev_index, log.last_index()), m.prev_term
            )
            self._send(
                AppendResponse(
                    self._term, self._id, m.sender, False, m.prev_index, hint_index, hint_term
                )
            )
            return
        conflict = log.find_conflict(m.entries)
        if conflict:
            self._append(m.entries[conflict - m.prev_index - 1 :])
        last_new = m.prev_index + len(m.entries)
        log.commit_to(min(m.commit, last_new))
        self._send(AppendResponse(self._term, self._id, m.sender, True, last_new))

    def _handle_heartbeat(self, m: Heartbeat) -> None:
        # The leader caps the commit at our match index; the cap at our last index only
        # guards against a faulty leader.
        self._log.commit_to(min(m.commit, self._log.last_index()))
        self._send(HeartbeatResponse(self._term, self._id, m.sender, m.context))

    def _handle_snapshot(self, m: InstallSnapshot) -> None:
        meta = m.snapshot.meta
        log = self._log
        if meta.index <= log.committed:
            self._send(AppendResponse(self._term, self._id, m.sender, True, log.committed))
            return
        if log.match_term(meta.index, meta.term):
            log.commit_to(meta.index)  # our log already has it: just commit
        else:
            logger.info(
                "raft %s: installing snapshot at %d (term %d) from %s",
                self._name,
                meta.index,
                meta.term,
                m.sender.short(),
            )
            log.restore(m.snapshot)
            self._configs = [(meta.index, meta.membership)]
            self._set_membership(meta.membership)
        self._send(AppendResponse(self._term, self._id, m.sender, True, meta.index))

    # -- leader side --------------------------------------------------------------------------

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        election = self._config.election_ticks
        if self._election_elapsed >= election:
            self._election_elapsed = 0
            if self._config.check_quorum and not self._quorum_active():
                logger.info(
                    "raft %s: stepping down in term %d: no quorum heard from within "
                    "an election timeout",
                    self._name,
                    self._term,
                )
                self._become_follower(self._term, None)
                return
            if self._transferee is not None:
                logger.info(
                    "raft %s: leadership transfer to %s timed out",
                    self._name,
                    self._transferee.short(),
                )
                self._transferee = None
        for peer, pr in self._progress.items():
            if pr.state is ProgressState.SNAPSHOT:
                pr.snapshot_elapsed += 1
                if pr.snapshot_elapsed >= election:  # assume it was lost, send it again
                    pr.pending_snapshot = 0
                    pr.become_probe()
                    self._to_send[peer] = True
        if self._heartbeat_elapsed >= self._config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_active(self) -> bool:
        active = 0
        for voter in self._membership.voters:
            if voter == self._id:
                active += 1
            else:
                pr = self._progress.get(voter)
                if pr is not None and pr.recent_active:
                    active += 1
        for pr in self._progress.values():
            pr.recent_active = False
        return active >= self._membership.quorum

    def _handle_append_response(self, m: AppendResponse, pr: Progress) -> None:
        log = self._log
        last = log.last_index()
        if m.index > last or m.hint_index > last:
            logger.warning(
                "raft %s: dropped an append response from %s for index %d beyond the log (%d)",
                self._name,
                m.sender.short(),
                m.index,
                last,
            )
            return
        if not m.success:
            probe = m.hint_index
            if m.hint_term > 0:
                probe, _ = log.find_conflict_by_term(m.hint_index, m.hint_term)
            if pr.maybe_decrease_to(m.index, probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._to_send[m.sender] = True
            return
        was_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            if was_paused and not pr.is_paused():
                self._to_send.setdefault(m.sender, False)
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match + 1 >= log.first_index():
            pr.become_probe()
            pr.become_replicate()
        self._to_send.setdefault(m.sender, False)
        self._maybe_commit()
        if m.sender == self._transferee and pr.match == log.last_index():
            logger.info("raft %s: %s caught up, sending TimeoutNow", self._name, m.sender.short())
            self._send(TimeoutNow(self._term, self._id, m.sender))

    def _handle_heartbeat_response(self, m: HeartbeatResponse, pr: Progress) -> None:
        pr.probe_sent = False
        if pr.state is ProgressState.REPLICATE and pr.is_paused():
            pr.free_one_inflight()
        if pr.match < self._log.last_index() or pr.state is ProgressState.PROBE:
            self._to_send[m.sender] = True
        if m.context:
            released = self._reads.acknowledge(
                m.sender, m.context, self._membership.voters, self._id
            )
            self._deliver_reads(released)

    def _maybe_commit(self) -> None:
        voters = self._membership.voters
        if not voters:
            return
        matches = sorted(
            (self._self_match if v == self._id else self._match_of(v) for v in voters),
            reverse=True,
        )
        index = matches[len(voters) // 2]
        log = self._log
        # Thesis 3.6.2: only an entry of the current term is committed by counting replicas.
        if index <= log.committed or log.term(index) != self._term:
            return
        log.commit_to(index)
        for peer in self._progress:
            self._to_send.setdefault(peer, False)
        if self._reads_waiting:
            waiting, self._reads_waiting = self._reads_waiting, []
            for context, origin in waiting:
                self._leader_read(context, origin)
        if log.committed >= self._pending_conf_index:
            self._drop_removed_progress()
            if self._id not in voters:
                logger.info("raft %s: removed from the configuration, stepping down", self._name)
                self._become_follower(self._term, None)

    def _match_of(self, peer: PeerId) -> int:
        pr = self._progress.get(peer)
        return pr.match if pr is not None else 0

    def _leader_read(self, context: bytes, origin: PeerId) -> None:
        log = self._log
        if log.term(log.committed) != self._term:
            # Our commit index may lag the true one until an entry of our term commits.
            self._reads_waiting.append((context, origin))
            return
        heartbeat_context = self._reads.add(log.committed, context, origin)
        released = self._reads.release(self._membership.voters, self._id)
        if released:
            self._deliver_reads(released)
        else:
            self._broadcast_heartbeat(heartbeat_context)

    def _deliver_reads(self, released: list[PendingRead]) -> None:
        for read in released:
            if read.origin == self._id:
                self._read_states.append(ReadState(read.index, read.context))
            else:
                self._send(
                    ReadIndexResponse(self._term, self._id, read.origin, read.context, read.index)
                )

    def _broadcast_heartbeat(self, context: bytes | None = None) -> None:
        if context is None:
            context = self._reads.heartbeat_context()
        committed = self._log.committed
        for peer, pr in self._progress.items():
            self._send(Heartbeat(self._term, self._id, peer, min(pr.match, committed), context))

    def _flush(self) -> None:
        """Send the appends that proposals, acknowledgements and commits called for."""
        if not self._to_send:
            return
        to_send, self._to_send = self._to_send, {}
        if self._role is not Role.LEADER:
            return
        for peer, force in to_send.items():
            pr = self._progress.get(peer)
            if pr is None:
                continue
            sent = self._send_append(peer, pr, force)
            while sent and pr.state is ProgressState.REPLICATE:
                sent = self._send_append(peer, pr, False)

    def _send_append(self, peer: PeerId, pr: Progress, force: bool) -> bool:
        if pr.is_paused():
            return False
        log = self._log
        last = log.last_index()
        config = self._config
        prev_index = pr.next - 1
        try:
            prev_term = log.term(prev_index)
            hi = min(last + 1, pr.next + config.max_entries_per_message)
            entries = log.entries(pr.next, hi, config.max_bytes_per_message)
        except Compacted:
            return self._send_snapshot(peer, pr)
        commit = log.committed
        if not entries and not force and not pr.can_bump_commit(commit):
            return False
        self._send(
            AppendEntries(self._term, self._id, peer, prev_index, prev_term, commit, tuple(entries))
        )
        pr.sent(entries[-1].index if entries else prev_index, len(entries), commit)
        return True

    def _send_snapshot(self, peer: PeerId, pr: Progress) -> bool:
        snapshot = self._log.snapshot()
        if snapshot.index == 0:
            return False
        logger.info(
            "raft %s: sending snapshot at %d to %s", self._name, snapshot.index, peer.short()
        )
        self._send(InstallSnapshot(self._term, self._id, peer, snapshot))
        pr.become_snapshot(snapshot.index)
        return True

    # -- log and configuration ----------------------------------------------------------------

    def _append(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        changed = False
        if first <= self._log.last_index():
            while len(self._configs) > 1 and self._configs[-1][0] >= first:
                self._configs.pop()
                changed = True
        self._log.append(list(entries))
        for entry in entries:
            if entry.kind == EntryKind.CONFIG:
                self._configs.append((entry.index, decode_membership(entry.data)))
                changed = True
        if changed:
            self._set_membership(self._configs[-1][1])
        if self._role is Role.LEADER:
            for peer in self._progress:
                self._to_send.setdefault(peer, False)

    def _set_membership(self, membership: Membership) -> None:
        if membership == self._membership:
            return
        logger.info(
            "raft %s: configuration is now voters=%s learners=%s",
            self._name,
            [p.short() for p in membership.voters],
            [p.short() for p in membership.learners],
        )
        self._membership = membership
        if self._role is not Role.LEADER:
            return
        # Removed members keep receiving the log until the change commits, so that they learn
        # of their removal and stop campaigning (thesis 4.2.2); they are not counted.
        self._drop_removed_progress()
        for peer in membership.members:
            if peer == self._id:
                continue
            pr = self._progress.get(peer)
            if pr is None:
                self._add_progress(peer, self._log.last_index() + 1)
            else:
                pr.is_learner = peer not in membership.voters
        if self._transferee is not None and self._transferee not in membership.voters:
            self._transferee = None

    def _drop_removed_progress(self) -> None:
        membership = self._membership
        for peer, pr in list(self._progress.items()):
            if peer not in membership:
                if self._log.committed >= self._pending_conf_index:
                    del self._progress[peer]
                else:
                    pr.is_learner = True

    def _membership_at(self, index: int) -> Membership:
        found = self._configs[0][1]
        for at, membership in self._configs:
            if at > index:
                break
            found = membership
        return found

    def _send(self, msg: Message) -> None:
        self._messages.append(msg)


def _configs_in(log: RaftLog) -> list[tuple[int, Membership]]:
    """The configuration entries of a log being reopened."""
    found: list[tuple[int, Membership]] = []
    lo, hi = log.first_index(), log.last_index() + 1
    while lo < hi:
        chunk = log.entries(lo, hi, 4 << 20)
        for entry in chunk:
            if entry.kind == EntryKind.CONFIG:
                try:
                    found.append((entry.index, decode_membership(entry.data)))
                except DecodeError as exc:
                    raise CorruptStorage(
                        f"entry {entry.index} is not a configuration: {exc}"
                    ) from None
        lo = chunk[-1].index + 1
    return found
