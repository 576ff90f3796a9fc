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

import logging
import random
from collections.abc import MutableMapping, Sequence
from typing import Any

from node.groups.raft.config import RaftConfig
from node.groups.raft.configs import ConfigHistory
from node.groups.raft.errors import (
    Compacted,
    InvalidConfChange,
    NotLeader,
    ProposalDropped,
    Unavailable,
    UsageError,
)
from node.groups.raft.leader import Leadership
from node.groups.raft.log import RaftLog
from node.groups.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndexRequest,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    problem,
)
from node.groups.raft.ready import FollowerProgress, Outbox, ReadState, Ready, Role, SoftState
from node.groups.raft.records import (
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Membership,
    SnapshotMeta,
)
from node.groups.raft.storage import Storage
from node.primitives.codec import encode
from node.primitives.keys import PeerId

logger = logging.getLogger("node.groups.raft")


class NodeLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each record with the node it is about."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"raft {self.extra['node'] if self.extra else '?'}: {msg}", kwargs


class RaftNode:
    """One member of a Raft group, driven by its shell. Not thread-safe."""

    def __init__(
        self, node_id: PeerId, storage: Storage, config: RaftConfig, rng: random.Random
    ) -> None:
        hard, meta = storage.initial_state()
        self._id = node_id
        self._logger = NodeLogger(logger, {"node": node_id.short()})
        self._config = config
        self._rng = rng
        self._log = RaftLog(storage, hard.commit)
        self._term = hard.term
        self._vote = hard.vote
        self._leader: PeerId | None = None
        self._role = Role.FOLLOWER
        self._configs = ConfigHistory.load(meta, self._log)
        self._membership = self._configs.latest
        self._election_elapsed = 0
        self._timeout = self._random_timeout()
        self._votes: dict[PeerId, bool] = {}
        self._leadership: Leadership | None = None
        self._out = Outbox()
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
        return self._leadership.transferee if self._leadership is not None else None

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``, None if it was compacted or does not exist."""
        try:
            return self._log.term(index)
        except (Compacted, Unavailable):
            return None

    def follower_progress(self) -> dict[PeerId, FollowerProgress]:
        """The leader's view of its followers (empty on other nodes)."""
        return self._leadership.follower_progress() if self._leadership is not None else {}

    def snapshot_meta(self) -> SnapshotMeta:
        """Metadata for a snapshot of the state machine as of the applied index.

        The shell takes ``Snapshot(node.snapshot_meta(), state_machine_bytes)`` after applying
        a Ready and hands it to ``Storage.compact``.
        """
        applied = self._log.applied
        return SnapshotMeta(applied, self._log.term(applied), self._configs.at(applied))

    # -- inputs -------------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance the logical clock by one tick."""
        if self._leadership is not None:
            self._tick_leader(self._leadership)
            return
        self._election_elapsed += 1
        if self._promotable():
            if self._election_elapsed >= self._timeout:
                self._campaign(pre_vote=self._config.pre_vote, transfer=False)
        elif self._leader is not None and self._election_elapsed >= self._config.election_ticks:
            # A node that never campaigns (a learner, an observer) would otherwise keep a
            # leader that left or died forever: it forgets it once the leader's lease lapses.
            self._logger.info("no word from leader %s: forgetting it", self._leader.short())
            self._leader = None

    def campaign(self) -> None:
        """Start an election now (as if the election timeout elapsed), if this node may lead."""
        if self._role is not Role.LEADER and self._promotable():
            self._campaign(pre_vote=self._config.pre_vote, transfer=False)

    def propose(self, data: bytes) -> int:
        """Append a command; returns its index. ``NotLeader`` or ``ProposalDropped``."""
        self._accepting()
        index = self._log.last_index() + 1
        self._append([Entry(index, self._term, EntryKind.COMMAND, data)])
        return index

    def propose_conf_change(self, change: ConfChange) -> int:
        """Append a configuration entry for one added, promoted or removed member."""
        leadership = self._accepting()
        pending = leadership.pending_conf_index
        if pending > self._log.committed:
            raise ProposalDropped(f"the configuration change at {pending} is not committed yet")
        try:
            membership = change.apply_to(self._membership)
        except ValueError as exc:
            raise InvalidConfChange(str(exc)) from None
        index = self._log.last_index() + 1
        leadership.pending_conf_index = index
        self._append([Entry(index, self._term, EntryKind.CONFIG, encode(membership))])
        self._logger.info("proposed %s %s at %d", change.kind.name, change.node.short(), index)
        return index

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read identified by ``context`` (unique per pending read).

        A ``ReadState`` with this context appears in a later Ready once the leader confirmed
        its leadership; followers forward the request to the leader. Reads lost to a leader
        change never complete: the caller retries after a timeout.
        """
        if self._leadership is not None:
            self._leadership.read(context, self._id)
        elif self._leader is None:
            raise NotLeader(None)
        else:
            self._out.send(ReadIndexRequest(self._term, self._id, self._leader, context))

    def transfer_leader(self, to: PeerId) -> None:
        """Hand leadership to voter ``to`` once its log is up to date (thesis 3.10).

        Proposals are refused until the transfer completes or an election timeout passes.
        """
        leadership = self._leadership
        if leadership is None:
            raise NotLeader(self._leader)
        if to == self._id:
            leadership.transferee = None
            return
        if leadership.transferee != to:
            leadership.transfer(to)
            self._election_elapsed = 0  # the transfer is abandoned after one election timeout

    def report_unreachable(self, peer: PeerId) -> None:
        """The shell could not deliver to ``peer``: stop pipelining to it and probe instead."""
        if self._leadership is not None:
            self._leadership.report_unreachable(peer)

    def report_snapshot(self, peer: PeerId, *, delivered: bool) -> None:
        """Outcome of sending an ``InstallSnapshot`` to ``peer``, if the shell knows it."""
        if self._leadership is not None:
            self._leadership.report_snapshot(peer, delivered)

    def step(self, msg: Message) -> None:
        """Feed a message from a peer. Malformed or misaddressed messages are logged and
        dropped; messages of an older term are dropped (or answered so the sender learns)."""
        reason = problem(msg)
        if reason is None and msg.to != self._id:
            reason = f"addressed to {msg.to.short()}"
        if reason is None and msg.sender == self._id:
            reason = "sent by this node"
        if reason is not None:
            self._logger.warning("dropped malformed %s: %s", type(msg).__name__, reason)
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
        if self._leadership is not None:
            self._leadership.flush()
        log = self._log
        return bool(
            self._out.messages
            or self._out.read_states
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
        if self._leadership is not None:
            self._leadership.flush()
        log = self._log
        snapshot = log.pending_snapshot()
        if snapshot is not None:
            log.applied = max(log.applied, snapshot.index)
        entries = log.unstable_entries()
        hard = HardState(self._term, self._vote, log.committed)
        soft = SoftState(self._leader, self._role)
        prev = self._prev_hard
        messages, read_states = self._out.take()
        ready = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != prev else None,
            snapshot=snapshot,
            entries=entries,
            committed_entries=tuple(log.take_committed(self._config.max_apply_bytes)),
            read_states=read_states,
            messages=messages,
            must_sync=bool(entries)
            or snapshot is not None
            or hard.term != prev.term
            or hard.vote != prev.vote,
        )
        self._prev_hard, self._prev_soft = hard, soft
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
        leadership = self._leadership
        if leadership is not None and leadership.persisted(self._log.stable_last_index()):
            self._after_commit(leadership)

    # -- roles --------------------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self._term:
            self._term = term
            self._vote = None
        self._leader = None
        self._election_elapsed = 0
        self._timeout = self._random_timeout()
        self._votes = {}
        self._leadership = None

    def _become_follower(self, term: int, leader: PeerId | None) -> None:
        self._reset(term)
        self._role = Role.FOLLOWER
        self._leader = leader

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._role = Role.LEADER
        self._leader = self._id
        self._leadership = Leadership(
            self._id, self._term, self._log, self._config, self._membership, self._out, self._logger
        )
        noop = self._log.last_index() + 1
        self._leadership.pending_conf_index = noop  # no change before one of ours commits
        self._append([Entry(noop, self._term, EntryKind.NOOP)])
        self._logger.info("became leader in term %d", self._term)

    def _promotable(self) -> bool:
        return (
            self._id in self._membership.voters
            and self._config.preference.campaigns
            and self._log.pending_snapshot() is None
        )

    def _random_timeout(self) -> int:
        base = self._config.election_ticks * self._config.preference.factor
        return base + self._rng.randrange(base)

    def _accepting(self) -> Leadership:
        if self._leadership is None:
            raise NotLeader(self._leader)
        self._leadership.check_accepting()
        return self._leadership

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
        self._logger.debug("%s for term %d", "pre-vote" if pre_vote else "campaign", term)
        if self._poll(self._id, granted=True):  # the only voter
            if pre_vote:
                self._campaign(pre_vote=False, transfer=transfer)
            else:
                self._become_leader()
            return
        last_index, last_term = self._log.last_index(), self._log.last_term()
        for voter in self._membership.voters:
            if voter != self._id:
                self._out.send(
                    VoteRequest(term, self._id, voter, last_index, last_term, pre_vote, transfer)
                )

    def _poll(self, peer: PeerId, *, granted: bool) -> bool | None:
        """Record a vote; True once the election is won, False once lost, else None."""
        self._votes.setdefault(peer, granted)
        voters, quorum = self._membership.voters, self._membership.quorum
        yes = sum(1 for v in voters if self._votes.get(v) is True)
        no = sum(1 for v in voters if self._votes.get(v) is False)
        return True if yes >= quorum else False if no > len(voters) - quorum else None

    def _handle_vote_request(self, m: VoteRequest) -> None:
        can_vote = (
            self._vote == m.sender
            or (self._vote is None and self._leader is None)
            or (m.pre_vote and m.term > self._term)
        )
        if can_vote and self._log.is_up_to_date(m.last_index, m.last_term):
            self._out.send(VoteResponse(m.term, self._id, m.sender, True, m.pre_vote))
            if not m.pre_vote:
                self._election_elapsed = 0
                self._vote = m.sender
        else:
            self._out.send(VoteResponse(self._term, self._id, m.sender, False, m.pre_vote))

    def _handle_vote_response(self, m: VoteResponse) -> None:
        if m.pre_vote != (self._role is Role.PRE_CANDIDATE):
            return
        if m.pre_vote and m.granted and m.term != self._term + 1:
            return  # a grant from an earlier pre-campaign
        won = self._poll(m.sender, granted=m.granted)
        if won and m.pre_vote:
            self._campaign(pre_vote=False, transfer=False)
        elif won:
            self._become_leader()
        elif won is False:
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
                self._logger.debug("ignored a vote request of term %d: the leader is live", m.term)
                return False
            if m.pre_vote:
                return True  # a pre-vote never changes anyone's term
        elif isinstance(m, VoteResponse) and m.pre_vote and m.granted:
            return True
        leader = m.sender if isinstance(m, AppendEntries | Heartbeat | InstallSnapshot) else None
        self._logger.debug("term %d -> %d on %s", self._term, m.term, type(m).__name__)
        self._become_follower(m.term, leader)
        return True

    def _on_lower_term(self, m: Message) -> None:
        if isinstance(m, AppendEntries | Heartbeat):
            # A leader of an older term: answer so it learns our term and steps down (it may
            # be a node whose term we cannot otherwise reach while vote requests are ignored).
            self._out.send(AppendResponse(self._term, self._id, m.sender, False, 0))
        elif isinstance(m, VoteRequest) and m.pre_vote:
            self._out.send(VoteResponse(self._term, self._id, m.sender, False, True))
        else:
            self._logger.debug("dropped %s of stale term %d", type(m).__name__, m.term)

    def _dispatch(self, m: Message) -> None:
        if isinstance(m, VoteRequest):
            self._handle_vote_request(m)
        elif isinstance(m, VoteResponse):
            self._handle_vote_response(m)
        elif isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
            if self._role is Role.LEADER:
                self._logger.error("another leader %s in term %d", m.sender.short(), m.term)
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
        elif isinstance(m, AppendResponse):
            if self._leadership is not None and self._leadership.on_append_response(m):
                self._after_commit(self._leadership)
        elif isinstance(m, HeartbeatResponse):
            if self._leadership is not None:
                self._leadership.on_heartbeat_response(m)
        elif isinstance(m, TimeoutNow):
            if self._role is not Role.LEADER and self._promotable():
                self._logger.info("campaigning: leadership transfer from %s", m.sender.short())
                self._campaign(pre_vote=False, transfer=True)
            else:
                self._logger.info("declined a leadership transfer from %s", m.sender.short())
        elif isinstance(m, ReadIndexRequest):
            if self._leadership is not None:
                self._leadership.read(m.context, m.sender)
        else:
            self._out.read_states.append(ReadState(m.index, m.context))

    # -- follower side ------------------------------------------------------------------------

    def _handle_append(self, m: AppendEntries) -> None:
        log = self._log
        if m.prev_index < log.committed:
            self._out.send(AppendResponse(self._term, self._id, m.sender, True, log.committed))
            return
        if not log.match_term(m.prev_index, m.prev_term):
            hint_index, hint_term = log.find_conflict_by_term(
                min(m.prev_index, log.last_index()), m.prev_term
            )
            reject = AppendResponse(
                self._term, self._id, m.sender, False, m.prev_index, hint_index, hint_term
            )
            self._out.send(reject)
            return
        conflict = log.find_conflict(m.entries)
        if conflict:
            self._append(m.entries[conflict - m.prev_index - 1 :])
        last_new = m.prev_index + len(m.entries)
        log.commit_to(min(m.commit, last_new))
        self._out.send(AppendResponse(self._term, self._id, m.sender, True, last_new))

    def _handle_heartbeat(self, m: Heartbeat) -> None:
        # The leader caps the commit at our match index; the cap at our last index only
        # guards against a faulty leader.
        self._log.commit_to(min(m.commit, self._log.last_index()))
        self._out.send(HeartbeatResponse(self._term, self._id, m.sender, m.context))

    def _handle_snapshot(self, m: InstallSnapshot) -> None:
        meta = m.snapshot.meta
        log = self._log
        if meta.index <= log.committed:
            self._out.send(AppendResponse(self._term, self._id, m.sender, True, log.committed))
            return
        if log.match_term(meta.index, meta.term):
            log.commit_to(meta.index)  # our log already has it: just commit
        else:
            self._logger.info("installing snapshot at %d (term %d)", meta.index, meta.term)
            log.restore(m.snapshot)
            self._configs = ConfigHistory(meta)
            self._set_membership(meta.membership)
        self._out.send(AppendResponse(self._term, self._id, m.sender, True, meta.index))

    # -- leader side --------------------------------------------------------------------------

    def _tick_leader(self, leadership: Leadership) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._config.election_ticks:
            self._election_elapsed = 0
            if self._config.check_quorum and not leadership.quorum_active():
                self._logger.info("stepping down: no quorum heard from in term %d", self._term)
                self._become_follower(self._term, None)
                return
            leadership.abort_transfer()
        leadership.tick()

    def _after_commit(self, leadership: Leadership) -> None:
        if self._id not in self._membership.voters and (
            self._log.committed >= leadership.pending_conf_index
        ):
            self._logger.info("removed from the configuration, stepping down")
            self._become_follower(self._term, None)

    # -- log and configuration ----------------------------------------------------------------

    def _append(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        changed = first <= self._log.last_index() and self._configs.truncate(first)
        self._log.append(list(entries))
        if self._configs.append(entries) or changed:
            self._set_membership(self._configs.latest)
        if self._leadership is not None:
            self._leadership.mark_all()

    def _set_membership(self, membership: Membership) -> None:
        if membership == self._membership:
            return
        self._logger.info(
            "configuration: voters %s, learners %s",
            [p.short() for p in membership.voters],
            [p.short() for p in membership.learners],
        )
        self._membership = membership
        if self._leadership is not None:
            self._leadership.on_membership(membership)
