"""What only a leader keeps, for one term: follower progress, commitment, ReadIndex requests
and a leadership transfer in progress. ``RaftNode`` creates one when it wins an election and
drops it when it steps down.
"""

from __future__ import annotations

import logging

from node.groups.raft.config import RaftConfig
from node.groups.raft.errors import Compacted, ProposalDropped
from node.groups.raft.log import RaftLog
from node.groups.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    ReadIndexResponse,
    TimeoutNow,
)
from node.groups.raft.progress import Progress, ProgressState
from node.groups.raft.reads import PendingRead, ReadQueue
from node.groups.raft.ready import FollowerProgress, Outbox, ReadState
from node.groups.raft.records import Membership
from node.primitives.keys import PeerId


class Leadership:
    def __init__(
        self,
        node_id: PeerId,
        term: int,
        log: RaftLog,
        config: RaftConfig,
        membership: Membership,
        out: Outbox,
        node_logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.id = node_id
        self.term = term
        self.log = log
        self.config = config
        self.membership = membership
        self._send = out.send
        self._out = out
        self._logger = node_logger
        self.progress: dict[PeerId, Progress] = {}
        self.self_match = log.stable_last_index()  # our own log counts once persisted
        self.to_send: dict[PeerId, bool] = {}  # peer -> send an append even if empty
        self.transferee: PeerId | None = None
        self.pending_conf_index = 0
        self.heartbeat_elapsed = 0
        self._reads = ReadQueue()
        self._reads_waiting: list[tuple[bytes, PeerId]] = []
        for peer in membership.members:
            if peer != node_id:
                self.add_progress(peer, log.last_index() + 1)

    # -- membership and proposals ----------------------------------------------------------

    def add_progress(self, peer: PeerId, next_index: int) -> None:
        is_learner = peer not in self.membership.voters
        self.progress[peer] = Progress(next_index, self.config.max_inflight, is_learner=is_learner)
        self.to_send[peer] = False

    def on_membership(self, membership: Membership) -> None:
        self.membership = membership
        # Removed members keep receiving the log until the change commits, so that they learn
        # of their removal and stop campaigning (thesis 4.2.2); they are not counted.
        self._drop_removed()
        for peer in membership.members:
            if peer == self.id:
                continue
            pr = self.progress.get(peer)
            if pr is None:
                self.add_progress(peer, self.log.last_index() + 1)
            else:
                pr.is_learner = peer not in membership.voters
        if self.transferee is not None and self.transferee not in membership.voters:
            self.transferee = None

    def _drop_removed(self) -> None:
        for peer, pr in list(self.progress.items()):
            if peer not in self.membership:
                if self.log.committed >= self.pending_conf_index:
                    del self.progress[peer]
                else:
                    pr.is_learner = True

    def mark_all(self) -> None:
        for peer in self.progress:
            self.to_send.setdefault(peer, False)

    def check_accepting(self) -> None:
        if self.transferee is not None:
            raise ProposalDropped(f"leadership is being transferred to {self.transferee.short()}")

    def follower_progress(self) -> dict[PeerId, FollowerProgress]:
        return {
            peer: FollowerProgress(
                pr.match, pr.next, pr.state.value, pr.is_learner, pr.recent_active
            )
            for peer, pr in self.progress.items()
        }

    # -- time ------------------------------------------------------------------------------

    def tick(self) -> None:
        for peer, pr in self.progress.items():
            if pr.state is ProgressState.SNAPSHOT:
                pr.snapshot_elapsed += 1
                if pr.snapshot_elapsed >= self.config.election_ticks:  # lost: send it again
                    pr.pending_snapshot = 0
                    pr.become_probe()
                    self.to_send[peer] = True
        self.heartbeat_elapsed += 1
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self.broadcast_heartbeat()

    def quorum_active(self) -> bool:
        """Whether a majority of voters was heard from since the last call (check-quorum)."""
        active = 0
        for voter in self.membership.voters:
            pr = self.progress.get(voter)
            if voter == self.id or (pr is not None and pr.recent_active):
                active += 1
        for pr in self.progress.values():
            pr.recent_active = False
        return active >= self.membership.quorum

    # -- leadership transfer ---------------------------------------------------------------

    def transfer(self, to: PeerId) -> None:
        if to not in self.membership.voters or to not in self.progress:
            raise ProposalDropped(f"cannot transfer leadership to {to.short()}: not a voter")
        if self.transferee == to:
            return
        self._logger.info("transferring leadership to %s", to.short())
        self.transferee = to
        if self.progress[to].match == self.log.last_index():
            self._send(TimeoutNow(self.term, self.id, to))
        else:
            self.to_send[to] = True

    def abort_transfer(self) -> None:
        if self.transferee is not None:
            self._logger.info("leadership transfer to %s timed out", self.transferee.short())
            self.transferee = None

    # -- acknowledgements and commitment ---------------------------------------------------

    def persisted(self, index: int) -> bool:
        """Our own log is durable up to ``index``; True if that advanced the commit."""
        if index <= self.self_match:
            return False
        self.self_match = index
        return self.maybe_commit()

    def maybe_commit(self) -> bool:
        voters = self.membership.voters
        if not voters:
            return False
        matches = sorted(
            (self.self_match if v == self.id else self._match_of(v) for v in voters), reverse=True
        )
        index = matches[len(voters) // 2]
        log = self.log
        # Thesis 3.6.2: only an entry of the current term is committed by counting replicas.
        if index <= log.committed or log.term(index) != self.term:
            return False
        log.commit_to(index)
        self.mark_all()
        if self._reads_waiting:
            waiting, self._reads_waiting = self._reads_waiting, []
            for context, origin in waiting:
                self.read(context, origin)
        if log.committed >= self.pending_conf_index:
            self._drop_removed()
        return True

    def _match_of(self, peer: PeerId) -> int:
        pr = self.progress.get(peer)
        return pr.match if pr is not None else 0

    def on_append_response(self, m: AppendResponse) -> bool:
        """Handle an answer to an append or snapshot; True if the commit advanced."""
        pr = self.progress.get(m.sender)
        if pr is None:
            return False
        pr.recent_active = True
        log = self.log
        last = log.last_index()
        if m.index > last or m.hint_index > last:
            self._logger.warning(
                "dropped an append response from %s for index %d beyond the log (%d)",
                m.sender.short(),
                m.index,
                last,
            )
            return False
        if not m.success:
            probe = m.hint_index
            if m.hint_term > 0:
                probe, _ = log.find_conflict_by_term(m.hint_index, m.hint_term)
            if pr.maybe_decrease_to(m.index, probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self.to_send[m.sender] = True
            return False
        was_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            if was_paused and not pr.is_paused():
                self.to_send.setdefault(m.sender, False)
            return False
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match + 1 >= log.first_index():
            pr.become_probe()
            pr.become_replicate()
        self.to_send.setdefault(m.sender, False)
        if m.sender == self.transferee and pr.match == last:
            self._logger.info("%s caught up, sending TimeoutNow", m.sender.short())
            self._send(TimeoutNow(self.term, self.id, m.sender))
        return self.maybe_commit()

    def on_heartbeat_response(self, m: HeartbeatResponse) -> None:
        pr = self.progress.get(m.sender)
        if pr is None:
            return
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state is ProgressState.REPLICATE and pr.is_paused():
            pr.free_one_inflight()
        if pr.match < self.log.last_index() or pr.state is ProgressState.PROBE:
            self.to_send[m.sender] = True
        if m.context:
            voters = self.membership.voters
            self._deliver_reads(self._reads.acknowledge(m.sender, m.context, voters, self.id))

    def report_unreachable(self, peer: PeerId) -> None:
        pr = self.progress.get(peer)
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, peer: PeerId, delivered: bool) -> None:
        pr = self.progress.get(peer)
        if pr is not None and pr.state is ProgressState.SNAPSHOT:
            if not delivered:
                pr.pending_snapshot = 0
            pr.become_probe()
            pr.probe_sent = delivered  # wait for the follower's answer

    # -- ReadIndex -------------------------------------------------------------------------

    def read(self, context: bytes, origin: PeerId) -> None:
        log = self.log
        if log.term(log.committed) != self.term:
            # Our commit index may lag the true one until an entry of our term commits.
            self._reads_waiting.append((context, origin))
            return
        heartbeat_context = self._reads.add(log.committed, context, origin)
        released = self._reads.release(self.membership.voters, self.id)
        if released:
            self._deliver_reads(released)
        else:
            self.broadcast_heartbeat(heartbeat_context)

    def _deliver_reads(self, released: list[PendingRead]) -> None:
        for read in released:
            if read.origin == self.id:
                self._out.read_states.append(ReadState(read.index, read.context))
            else:
                self._send(
                    ReadIndexResponse(self.term, self.id, read.origin, read.context, read.index)
                )

    # -- sending ---------------------------------------------------------------------------

    def broadcast_heartbeat(self, context: bytes | None = None) -> None:
        if context is None:
            context = self._reads.heartbeat_context()
        committed = self.log.committed
        for peer, pr in self.progress.items():
            self._send(Heartbeat(self.term, self.id, peer, min(pr.match, committed), context))

    def flush(self) -> None:
        """Send the appends that proposals, acknowledgements and commits called for."""
        to_send, self.to_send = self.to_send, {}
        for peer, force in to_send.items():
            pr = self.progress.get(peer)
            if pr is None:
                continue
            sent = self._send_append(peer, pr, force)
            while sent and pr.state is ProgressState.REPLICATE:
                sent = self._send_append(peer, pr, False)

    def _send_append(self, peer: PeerId, pr: Progress, force: bool) -> bool:
        if pr.is_paused():
            return False
        log, config = self.log, self.config
        prev_index = pr.next - 1
        try:
            prev_term = log.term(prev_index)
            hi = min(log.last_index() + 1, pr.next + config.max_entries_per_message)
            entries = log.entries(pr.next, hi, config.max_bytes_per_message)
        except Compacted:
            return self._send_snapshot(peer, pr)
        commit = log.committed
        if not entries and not force and not pr.can_bump_commit(commit):
            return False
        self._send(
            AppendEntries(self.term, self.id, peer, prev_index, prev_term, commit, tuple(entries))
        )
        pr.sent(entries[-1].index if entries else prev_index, len(entries), commit)
        return True

    def _send_snapshot(self, peer: PeerId, pr: Progress) -> bool:
        snapshot = self.log.snapshot()
        if snapshot.index == 0:
            return False
        self._logger.info("sending snapshot at %d to %s", snapshot.index, peer.short())
        self._send(InstallSnapshot(self.term, self.id, peer, snapshot))
        pr.become_snapshot(snapshot.index)
        return True
