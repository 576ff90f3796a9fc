"""Leadership transfer (3.10), ReadIndex (6.4), learners and membership changes (4.1),
snapshots and InstallSnapshot (5)."""

from __future__ import annotations

import msgspec
import pytest

from node.groups.raft import (
    ConfChange,
    ConfChangeKind,
    EntryKind,
    Heartbeat,
    InstallSnapshot,
    InvalidConfChange,
    LeadershipPreference,
    NotLeader,
    ProposalDropped,
    ReadIndexRequest,
    ReadState,
    Role,
    Snapshot,
    TimeoutNow,
    decode_membership,
)
from tests.groups.harness import CONFIG, Cluster, peer

# -- leadership transfer -------------------------------------------------------------------


def test_transfer_to_an_up_to_date_follower() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    term = c.core(1).term
    c.core(1).transfer_leader(peer(2))
    c.deliver()
    assert c.core(2).role is Role.LEADER and c.core(2).term == term + 1
    assert c.core(1).role is Role.FOLLOWER and c.core(1).leader == peer(2)


def test_transfer_waits_for_the_target_to_catch_up_and_refuses_proposals() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    c.core(1).propose(b"x")
    c.deliver()
    c.core(1).transfer_leader(peer(3))
    with pytest.raises(ProposalDropped, match="transferred"):
        c.core(1).propose(b"y")
    sent = c[1].drain()
    assert not any(isinstance(m, TimeoutNow) for m in sent)  # node 3 lags: catch up first
    c.heal()
    c.tick(1)
    assert c.core(3).role is Role.LEADER


def test_transfer_times_out_after_an_election_timeout() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    c.core(1).transfer_leader(peer(3))
    c.tick(CONFIG.election_ticks, only=[1])
    assert c.core(1).transferee is None and c.core(1).role is Role.LEADER
    c.core(1).propose(b"accepted again")


def test_transfer_refused_by_an_observer_and_to_a_non_voter() -> None:
    observer = msgspec.structs.replace(CONFIG, preference=LeadershipPreference.observer())
    c = Cluster([1, 2], learners=[3], configs={2: observer})
    c.elect(1)
    with pytest.raises(ProposalDropped, match="not a voter"):
        c.core(1).transfer_leader(peer(3))
    c.core(1).transfer_leader(peer(2))
    c.deliver()
    assert c.core(1).role is Role.LEADER and c.core(2).role is Role.FOLLOWER
    with pytest.raises(NotLeader):
        c.core(2).transfer_leader(peer(1))


# -- ReadIndex ----------------------------------------------------------------------------


def test_leader_read_needs_a_heartbeat_round_with_a_majority() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    leader = c.core(1)
    leader.read_index(b"r1")
    sent = c[1].drain()
    beats = [m for m in sent if isinstance(m, Heartbeat)]
    assert len(beats) == 2 and all(b.context for b in beats)
    assert c[1].read_states == []  # not before a majority confirmed the leadership
    c.core(2).step(beats[0] if beats[0].to == peer(2) else beats[1])
    for msg in c[2].drain():
        leader.step(msg)
    c[1].drain()
    assert c[1].read_states == [ReadState(leader.commit_index, b"r1")]


def test_deposed_leader_cannot_confirm_a_read() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.isolate(1)
    c.core(1).read_index(b"stale?")
    c.tick(3)
    assert c[1].read_states == []


def test_read_on_a_follower_is_forwarded_and_answered_with_the_leader_commit() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.core(1).propose(b"w")
    c.deliver()
    c.core(3).read_index(b"r")
    assert any(isinstance(m, ReadIndexRequest) for m in c[3].drain())
    c.core(3).read_index(b"r2")
    c.deliver()
    index = c.core(1).commit_index
    assert c[3].read_states == [ReadState(index, b"r2")]  # the first request was dropped above
    assert c[1].read_states == []


def test_read_waits_until_the_new_leader_commits_in_its_term() -> None:
    c = Cluster([1, 2, 3])
    c.drop = lambda m: (m.sender == peer(1) and not isinstance(m, type(m))) or False
    c.core(1).campaign()
    # Let the votes through, hold back everything else.
    c.drop = lambda m: type(m).__name__ not in ("VoteRequest", "VoteResponse")
    c.deliver()
    assert c.core(1).role is Role.LEADER
    c.core(1).read_index(b"early")
    c.heal()
    c.tick(1)
    (state,) = c[1].read_states
    assert state.context == b"early"
    assert c.core(1).term_at(state.index) == c.core(1).term  # at least the new noop


def test_read_without_a_known_leader_fails_fast() -> None:
    c = Cluster([1, 2, 3])
    with pytest.raises(NotLeader):
        c.core(2).read_index(b"r")


def test_single_voter_reads_at_once() -> None:
    c = Cluster([1])
    c.elect(1)
    c.core(1).read_index(b"solo")
    c[1].drain()
    assert c[1].read_states == [ReadState(c.core(1).commit_index, b"solo")]


# -- learners and membership changes ---------------------------------------------------------


def test_learner_receives_the_log_but_is_not_counted() -> None:
    c = Cluster([1, 2], learners=[3])
    c.elect(1)
    c.core(1).propose(b"x")
    c.deliver()
    assert c.core(3).commit_index == c.core(1).commit_index
    assert c.core(3).is_learner
    c.isolate(2)
    index = c.core(1).propose(b"needs node 2")
    c.deliver()
    assert c.core(1).commit_index < index  # the learner's copy does not make a majority


def test_learner_forgets_a_silent_leader_after_its_lease_but_not_a_live_one() -> None:
    c = Cluster([1, 2], learners=[3])
    c.elect(1)
    learner = c.core(3)
    assert learner.leader == peer(1)
    # Heartbeats keep the leader known however long it runs ...
    c.tick(CONFIG.election_ticks * 3)
    assert learner.leader == peer(1)
    # ... and silence beyond one lease makes a node that never campaigns forget it.
    c.drop = lambda msg: msg.sender in (peer(1), peer(2))
    c.tick(CONFIG.election_ticks - 1, only=[3])
    assert learner.leader == peer(1)
    c.tick(1, only=[3])
    assert learner.leader is None and learner.is_learner


def test_add_learner_then_promote_through_the_log() -> None:
    c = Cluster([1, 2, 3], extra=[4])
    c.elect(1)
    leader = c.core(1)
    index = leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, peer(4)))
    assert peer(4) in leader.membership.learners  # in effect once appended
    with pytest.raises(ProposalDropped, match="not committed"):
        leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_VOTER, peer(4)))
    c.deliver()
    assert leader.commit_index >= index
    assert c.core(4).last_index == leader.last_index and c.core(4).is_learner
    leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_VOTER, peer(4)))
    c.deliver()
    assert peer(4) in c.core(4).membership.voters
    # Four voters: a commit needs three of them.
    c.isolate(4)
    c.drop = lambda m: peer(3) in (m.sender, m.to) or peer(4) in (m.sender, m.to)
    index = leader.propose(b"x")
    c.deliver()
    assert leader.commit_index < index
    configs = [e for e in c[4].applied if e.kind == EntryKind.CONFIG]
    assert peer(4) in decode_membership(configs[-1].data).voters


def test_invalid_changes_are_rejected() -> None:
    c = Cluster([1, 2], learners=[3])
    c.elect(1)
    leader = c.core(1)
    for change, reason in [
        (ConfChange(ConfChangeKind.ADD_LEARNER, peer(3)), "already a member"),
        (ConfChange(ConfChangeKind.ADD_VOTER, peer(2)), "already a voter"),
        (ConfChange(ConfChangeKind.REMOVE, peer(7)), "not a member"),
    ]:
        with pytest.raises(InvalidConfChange, match=reason):
            leader.propose_conf_change(change)
    solo = Cluster([1])
    solo.elect(1)
    with pytest.raises(InvalidConfChange, match="last voter"):
        solo.core(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE, peer(1)))


def test_new_leader_changes_configuration_only_after_committing_in_its_term() -> None:
    c = Cluster([1, 2, 3])
    c.core(1).campaign()
    c.drop = lambda m: type(m).__name__ not in ("VoteRequest", "VoteResponse")
    c.deliver()
    with pytest.raises(ProposalDropped, match="not committed"):
        c.core(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE, peer(3)))
    c.heal()
    c.tick(1)
    c.core(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE, peer(3)))


def test_removed_follower_stops_being_replicated_to() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.core(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE, peer(3)))
    c.deliver()
    assert peer(3) not in c.core(1).follower_progress()
    last = c.core(3).last_index
    c.core(1).propose(b"after")
    c.tick(2)
    assert c.core(3).last_index == last
    # Two voters left: both are needed, and the removed node cannot campaign.
    for _ in range(5 * CONFIG.election_ticks):
        c.core(3).tick()
    assert c.core(3).role is Role.FOLLOWER


def test_removed_leader_steps_down_once_the_change_commits() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    index = c.core(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE, peer(1)))
    c.deliver()
    assert c.core(1).commit_index >= index
    assert c.core(1).role is Role.FOLLOWER
    c.tick(3 * CONFIG.election_ticks, only=[2, 3])
    leader = next(n for n in (2, 3) if c.core(n).role is Role.LEADER)
    assert c.core(leader).membership.voters == (peer(2), peer(3))


def test_uncommitted_configuration_is_rolled_back_with_its_entry() -> None:
    c = Cluster([1, 2, 3], extra=[4])
    c.elect(1)
    c.isolate(1)
    c.core(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, peer(4)))
    c.deliver()
    # Node 2 becomes leader of term 3 without the change; node 1 is overwritten.
    c.heal()
    c.core(1).step(Heartbeat(9, peer(2), peer(1), 0))  # any newer-term message deposes it
    c[1].drain()
    c.tick(4 * CONFIG.election_ticks, only=[2, 3])
    c.tick(2)
    assert peer(4) not in c.core(1).membership
    assert c.core(1).membership == c.core(2).membership


# -- snapshots ----------------------------------------------------------------------------


def _compact(c: Cluster, n: int) -> Snapshot:
    member = c[n]
    snapshot = Snapshot(member.core.snapshot_meta(), b"state@%d" % member.core.applied_index)
    member.storage.compact(snapshot)
    return snapshot


def test_lagging_follower_gets_the_snapshot_and_continues_from_it() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    for i in range(10):
        c.core(1).propose(bytes([i]))
    c.deliver()
    snapshot = _compact(c, 1)
    assert c.core(1).first_index == snapshot.index + 1
    c.heal()
    c.tick(2)
    follower = c[3]
    assert follower.snapshots == [snapshot]
    assert follower.storage.snapshot() == snapshot
    assert follower.core.commit_index >= snapshot.index
    c.core(1).propose(b"after")
    c.tick(1)
    assert follower.applied[-1].data == b"after"
    assert follower.core.first_index == snapshot.index + 1


def test_snapshot_meta_names_the_configuration_at_the_applied_index() -> None:
    c = Cluster([1, 2, 3], extra=[4])
    c.elect(1)
    c.core(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, peer(4)))
    c.deliver()
    meta = c.core(1).snapshot_meta()
    assert meta.index == c.core(1).applied_index
    assert peer(4) in meta.membership.learners


def test_snapshot_older_than_the_commit_is_ignored() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    for i in range(5):
        c.core(1).propose(bytes([i]))
    c.deliver()
    c.tick(1)
    old = Snapshot(c.core(1).snapshot_meta(), b"x")
    follower = c.core(2)
    follower.step(
        InstallSnapshot(
            follower.term,
            peer(1),
            peer(2),
            msgspec.structs.replace(old, meta=msgspec.structs.replace(old.meta, index=2, term=1)),
        )
    )
    rd = follower.ready()
    assert rd.snapshot is None
    c[2].storage.save(rd.hard_state, rd.entries, rd.snapshot)
    follower.advance(rd)
    assert follower.first_index == 1


def test_shell_reports_steer_replication() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    leader = c.core(1)
    assert leader.follower_progress()[peer(2)].state == "replicate"
    leader.report_unreachable(peer(2))
    assert leader.follower_progress()[peer(2)].state == "probe"
    c.isolate(3)
    for i in range(5):
        leader.propose(bytes([i]))
    c.deliver()
    _compact(c, 1)
    c.heal()
    c.drop = lambda m: isinstance(m, InstallSnapshot)  # the transport failed to send it
    c.tick(1)
    assert leader.follower_progress()[peer(3)].state == "snapshot"
    leader.report_snapshot(peer(3), delivered=False)
    assert leader.follower_progress()[peer(3)].state == "probe"
    c.heal()
    c.tick(2)
    assert c.core(3).commit_index == leader.commit_index
