"""Leader election, tied to the rules of Ongaro's thesis (chapter 3, 4.2.3, 9.6)."""

from __future__ import annotations

import random

import msgspec
import pytest

from node.errors import ConfigError
from node.groups.raft import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    LeadershipPreference,
    Membership,
    MemoryStorage,
    RaftConfig,
    RaftNode,
    Role,
    UsageError,
    VoteRequest,
    VoteResponse,
    bootstrap,
)
from node.primitives import encode
from tests.groups.harness import CONFIG, Cluster, Member, peer

NO_PRE_VOTE = msgspec.structs.replace(CONFIG, pre_vote=False, check_quorum=False)


def votes_sent(member: Member) -> list[VoteRequest]:
    return [m for m in member.drain() if isinstance(m, VoteRequest)]


def test_follower_campaigns_after_its_election_timeout() -> None:
    # 3.4: "If a follower receives no communication over a period of time called the election
    # timeout, then it ... begins an election": it increments its term and votes for itself.
    c = Cluster([1, 2, 3], config=NO_PRE_VOTE)
    node = c[1]
    for _ in range(CONFIG.election_ticks - 1):
        node.core.tick()
    assert node.core.role is Role.FOLLOWER
    for _ in range(CONFIG.election_ticks):
        node.core.tick()
    assert node.core.role is Role.CANDIDATE
    assert (node.core.term, node.core.vote) == (2, peer(1))
    sent = votes_sent(node)
    assert {m.to for m in sent} == {peer(2), peer(3)}
    assert all(m.term == 2 and not m.pre_vote for m in sent)


def test_candidate_with_majority_becomes_leader_and_appends_a_noop() -> None:
    c = Cluster([1, 2, 3], config=NO_PRE_VOTE)
    c.elect(1)
    leader = c.core(1)
    assert leader.term == 2 and leader.leader == peer(1)
    assert c.core(2).leader == peer(1) and c.core(3).leader == peer(1)
    noop = c[1].storage.entries(2, 3)[0]
    assert (noop.kind, noop.term) == (EntryKind.NOOP, 2)


def test_one_vote_per_term_first_come_first_served() -> None:
    # 3.4: "each server will vote for at most one candidate in a given term".
    c = Cluster([1, 2, 3], config=NO_PRE_VOTE)
    voter = c.core(3)
    voter.step(VoteRequest(2, peer(1), peer(3), last_index=1, last_term=1))
    voter.step(VoteRequest(2, peer(2), peer(3), last_index=1, last_term=1))
    responses = [m for m in c[3].drain() if isinstance(m, VoteResponse)]
    assert [(r.to, r.granted) for r in responses] == [(peer(1), True), (peer(2), False)]
    assert c[3].storage.hard_state.vote == peer(1)


def test_vote_and_its_response_leave_in_the_same_ready_after_the_vote_is_saved() -> None:
    c = Cluster([1, 2, 3], config=NO_PRE_VOTE)
    c.core(2).step(VoteRequest(2, peer(1), peer(2), last_index=1, last_term=1))
    rd = c.core(2).ready()
    assert rd.hard_state == HardState(term=2, vote=peer(1), commit=0)
    assert rd.must_sync
    assert [type(m) for m in rd.messages] == [VoteResponse]


def _log_with_terms(terms: list[int]) -> MemoryStorage:
    storage = MemoryStorage()
    bootstrap(storage, Membership.of([peer(1), peer(2), peer(3)]))
    entries = [Entry(i + 2, t) for i, t in enumerate(terms)]
    storage.save(HardState(term=max(terms, default=1)), entries, None)
    return storage


def test_vote_denied_to_a_candidate_whose_log_is_less_up_to_date() -> None:
    # 3.6.1: "If the logs have last entries with different terms, then the log with the later
    # term is more up-to-date. If the logs end with the same term, then whichever log is longer
    # is more up-to-date."
    cases = [
        (3, 2, False),  # lower last term
        (4, 2, False),  # same last term, shorter log (ours ends at 5)
        (5, 2, True),  # same last term, same length
        (2, 3, True),  # higher last term, even though shorter
    ]
    for last_index, last_term, granted in cases:
        storage = _log_with_terms([1, 2, 2, 2])  # entries 2..5
        voter = Member(peer(3), storage, NO_PRE_VOTE)
        voter.core.step(VoteRequest(9, peer(1), peer(3), last_index, last_term))
        (response,) = [m for m in voter.drain() if isinstance(m, VoteResponse)]
        assert response.granted is granted, (last_index, last_term)


def test_pre_vote_does_not_change_any_term() -> None:
    # 9.6: a pre-candidate asks whether it could win before incrementing its term.
    c = Cluster([1, 2, 3])
    c.tick(2 * CONFIG.election_ticks, only=[1])
    # The pre-vote succeeded (nobody has heard from a leader), so node 1 went on to win.
    assert c.core(1).role is Role.LEADER and c.core(1).term == 2
    # A partitioned node pre-campaigns forever without raising its term.
    c.isolate(3)
    for _ in range(5 * CONFIG.election_ticks):
        c.core(3).tick()
        c.deliver()
    assert c.core(3).term == 2
    assert c.core(3).role is Role.PRE_CANDIDATE
    # When it comes back its term did not disrupt the leader.
    c.heal()
    c.tick(CONFIG.election_ticks)
    assert c.core(1).role is Role.LEADER and c.core(1).term == 2
    assert c.core(3).leader == peer(1)


def test_pre_vote_request_is_answered_without_recording_a_vote() -> None:
    c = Cluster([1, 2, 3])
    c.core(2).step(VoteRequest(2, peer(1), peer(2), 1, 1, pre_vote=True))
    (response,) = c[2].drain()
    assert isinstance(response, VoteResponse) and response.granted and response.pre_vote
    assert response.term == 2
    assert (c.core(2).term, c.core(2).vote) == (1, None)


def test_leader_lease_ignores_disruptive_vote_requests() -> None:
    # 4.2.3: "if a server receives a RequestVote request within the minimum election timeout of
    # hearing from a current leader, it does not update its term or grant its vote".
    c = Cluster([1, 2, 3])
    c.elect(1)
    term = c.core(2).term
    c.core(2).step(VoteRequest(term + 5, peer(3), peer(2), last_index=99, last_term=99))
    assert c.core(2).term == term
    assert c[2].drain() == []


def test_leader_steps_down_on_a_higher_term() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.core(1).step(AppendResponse(9, peer(2), peer(1), success=False, index=0))
    assert c.core(1).role is Role.FOLLOWER and c.core(1).term == 9


def test_stale_leader_is_told_the_newer_term() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.core(2).step(AppendEntries(1, peer(3), peer(2), 1, 1, 0))
    (answer,) = c[2].drain()
    assert isinstance(answer, AppendResponse) and answer.term == c.core(2).term


def test_check_quorum_leader_steps_down_when_isolated() -> None:
    # 6.2: "a leader steps down if an election timeout elapses without a successful round of
    # heartbeats to a majority of its cluster". Activity is checked once per election timeout,
    # so an isolated leader is gone after at most two.
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.isolate(1)
    c.tick(CONFIG.election_ticks - 1, only=[1])
    assert c.core(1).role is Role.LEADER
    c.tick(CONFIG.election_ticks + 1, only=[1])
    assert c.core(1).role is Role.FOLLOWER and c.core(1).leader is None


def test_leader_with_a_live_majority_stays() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    c.tick(5 * CONFIG.election_ticks, only=[1, 2])
    assert c.core(1).role is Role.LEADER


def test_exactly_one_leader_after_a_split_vote_is_resolved() -> None:
    c = Cluster([1, 2, 3, 4, 5], config=NO_PRE_VOTE)
    c.tick(20 * CONFIG.election_ticks)
    leaders = [m for m in c.members.values() if m.core.role is Role.LEADER]
    assert len(leaders) == 1
    term = leaders[0].core.term
    assert all(m.core.term == term and m.core.leader == leaders[0].id for m in c.members.values())


def test_learner_never_campaigns_and_its_vote_does_not_count() -> None:
    c = Cluster([1, 2], learners=[3], config=NO_PRE_VOTE)
    learner = c.core(3)
    for _ in range(10 * CONFIG.election_ticks):
        learner.tick()
    assert learner.role is Role.FOLLOWER and learner.term == 1 and c[3].drain() == []
    # Node 1 campaigns; only the learner answers: one voter of two is not a majority.
    c.isolate(2)
    c.core(1).campaign()
    c.deliver()
    assert c.core(1).role is Role.CANDIDATE


def test_observer_never_campaigns_but_votes() -> None:
    observer = msgspec.structs.replace(NO_PRE_VOTE, preference=LeadershipPreference.observer())
    c = Cluster([1, 2, 3], config=NO_PRE_VOTE, configs={3: observer})
    for _ in range(10 * CONFIG.election_ticks):
        c.core(3).tick()
    assert c.core(3).role is Role.FOLLOWER and c[3].drain() == []
    c.isolate(2)
    c.elect(1)  # with node 3's vote
    assert c.core(3).vote == peer(1)


def test_reluctant_node_waits_longer_before_campaigning() -> None:
    reluctant = msgspec.structs.replace(NO_PRE_VOTE, preference=LeadershipPreference.reluctant(3))
    c = Cluster([1, 2, 3], config=NO_PRE_VOTE, configs={1: reluctant})
    for _ in range(3 * CONFIG.election_ticks - 1):
        c.core(1).tick()
    assert c.core(1).role is Role.FOLLOWER
    for _ in range(3 * CONFIG.election_ticks):
        c.core(1).tick()
    assert c.core(1).role is Role.CANDIDATE


def test_randomized_timeouts_spread_over_one_election_timeout() -> None:
    timeouts = set()
    for seed in range(40):
        storage = MemoryStorage()
        bootstrap(storage, Membership.of([peer(1), peer(2), peer(3)]))
        core = RaftNode(peer(1), storage, NO_PRE_VOTE, random.Random(seed))
        ticks = 0
        while core.role is Role.FOLLOWER:
            core.tick()
            ticks += 1
        timeouts.add(ticks)
    assert min(timeouts) >= CONFIG.election_ticks
    assert max(timeouts) < 2 * CONFIG.election_ticks
    assert len(timeouts) > 3


def test_single_voter_elects_itself_and_commits_alone() -> None:
    c = Cluster([1])
    c.core(1).campaign()
    c.deliver()
    assert c.core(1).role is Role.LEADER
    index = c.core(1).propose(b"x")
    c.deliver()
    assert c.core(1).commit_index == index
    assert c[1].applied[-1].data == b"x"


def test_restart_keeps_term_vote_and_log() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.core(1).propose(b"a")
    c.deliver()
    before = (c.core(2).term, c.core(2).vote, c.core(2).last_index, c.core(2).commit_index)
    c[2].restart()
    core = c.core(2)
    assert (core.term, core.vote, core.last_index) == before[:3]
    assert core.commit_index == before[3] and core.role is Role.FOLLOWER


def test_bootstrap_refuses_a_non_empty_log() -> None:
    storage = MemoryStorage()
    members = Membership.of([peer(1)])
    bootstrap(storage, members)
    with pytest.raises(UsageError, match="empty"):
        bootstrap(storage, members)
    assert storage.entries(1, 2) == [Entry(1, 1, EntryKind.CONFIG, encode(members))]


@pytest.mark.parametrize(
    ("field", "value"), [("election_ticks", 1), ("heartbeat_ticks", 0), ("max_inflight", 0)]
)
def test_config_rejects_nonsense(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=field):
        RaftConfig(**{field: value})
    with pytest.raises(ConfigError, match="factor"):
        LeadershipPreference.reluctant(0)
