"""Log replication and commitment (thesis 3.5, 3.6), flow control, and the Ready contract."""

from __future__ import annotations

import logging

import msgspec
import pytest

from node.groups.raft import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    NotLeader,
    RaftConfig,
    Role,
    UsageError,
    VoteRequest,
)
from node.primitives import PeerId
from tests.groups.harness import CONFIG, Cluster, Member, peer


def appends(msgs: list[object], to: PeerId | None = None) -> list[AppendEntries]:
    return [m for m in msgs if isinstance(m, AppendEntries) and (to is None or m.to == to)]


def test_follower_rejects_append_whose_previous_entry_does_not_match() -> None:
    # 3.5: "If the follower does not find an entry in its log with the same index and term,
    # then it refuses the new entries."
    c = Cluster([1, 2, 3])
    follower = c.core(2)
    follower.step(
        AppendEntries(
            2, peer(1), peer(2), prev_index=5, prev_term=2, commit=0, entries=(Entry(6, 2),)
        )
    )
    (answer,) = c[2].drain()
    assert isinstance(answer, AppendResponse) and not answer.success
    assert answer.index == 5
    assert (answer.hint_index, answer.hint_term) == (1, 1)  # our last entry, term 1 <= 2
    assert follower.last_index == 1


def test_follower_truncates_a_conflicting_suffix_but_not_on_a_stale_duplicate() -> None:
    c = Cluster([1, 2, 3])
    f = c.core(2)
    f.step(AppendEntries(2, peer(1), peer(2), 1, 1, 0, (Entry(2, 2), Entry(3, 2), Entry(4, 2))))
    c[2].drain()
    # A new leader of term 3 overwrites from index 3.
    f.step(AppendEntries(3, peer(3), peer(2), 2, 2, 0, (Entry(3, 3, data=b"new"),)))
    c[2].drain()
    assert f.last_index == 3 and f.term_at(3) == 3
    assert c[2].storage.entries(2, 4) == [Entry(2, 2), Entry(3, 3, data=b"new")]
    # A delayed copy of an older append of the same leader must not cut the log short.
    f.step(AppendEntries(3, peer(3), peer(2), 4, 2, 0, ()))  # rejected: 4@2 is gone
    f.step(AppendEntries(3, peer(3), peer(2), 1, 1, 0, (Entry(2, 2),)))
    answers = [m for m in c[2].drain() if isinstance(m, AppendResponse)]
    assert [a.success for a in answers] == [False, True]
    assert f.last_index == 3


def test_follower_commits_only_what_it_verified() -> None:
    c = Cluster([1, 2, 3])
    f = c.core(2)
    f.step(AppendEntries(2, peer(1), peer(2), 1, 1, commit=9, entries=(Entry(2, 2),)))
    assert f.commit_index == 2  # min(leader commit, last new entry)
    f.step(Heartbeat(2, peer(1), peer(2), commit=99))
    assert f.commit_index == 2


def test_leader_repairs_a_divergent_follower() -> None:
    c = Cluster([1, 2, 3])
    # Node 3 holds entries of a term-2 leader that never committed them.
    c.core(3).step(
        AppendEntries(
            2, peer(2), peer(3), 1, 1, 0, tuple(Entry(i, 2, data=b"stale") for i in range(2, 8))
        )
    )
    c[3].drain()
    c.core(1).step(VoteRequest(3, peer(2), peer(1), 1, 1))  # move node 1 to term 3
    c[1].drain()
    c.elect(1)  # votes of 1 and 2 suffice
    c.core(1).propose(b"fresh")
    c.deliver()
    assert c[3].storage.entries(2, c.core(3).last_index + 1) == c[1].storage.entries(
        2, c.core(1).last_index + 1
    )
    assert all(e.data != b"stale" for e in c[3].storage.entries(2, c.core(3).last_index + 1))


def test_commit_needs_a_majority_of_voters() -> None:
    c = Cluster([1, 2, 3, 4, 5])
    c.elect(1)
    reach = {peer(2)}
    c.drop = lambda m: m.sender not in reach | {peer(1)} or m.to not in reach | {peer(1)}
    index = c.core(1).propose(b"x")
    c.deliver()
    assert c.core(1).commit_index < index  # 2 of 5
    reach.add(peer(3))
    c.tick(1)
    assert c.core(1).commit_index == index  # 3 of 5


def test_leader_counts_its_own_entry_only_once_persisted() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    leader, member = c.core(1), c[1]
    index = leader.propose(b"x")
    rd = leader.ready()
    assert [e.index for e in rd.entries] == [index]
    member.storage.save(rd.hard_state, rd.entries, rd.snapshot)
    for msg in appends(list(rd.messages), peer(2)):
        c.core(2).step(msg)
    for msg in c[2].drain():
        leader.step(msg)
    # A follower acknowledged; the leader's own copy counts only after advance().
    assert leader.commit_index < index
    leader.advance(rd)
    assert leader.commit_index == index


def test_old_term_entries_commit_only_through_a_current_term_entry() -> None:
    # 3.6.2 (figure 3.7): "Raft never commits log entries from previous terms by counting
    # replicas. Only log entries from the leader's current term are committed by counting".
    plain = msgspec.structs.replace(
        CONFIG, pre_vote=False, check_quorum=False, max_entries_per_message=1
    )
    c = Cluster([1, 2, 3], config=plain)
    c.elect(1)
    leader = c.core(1)
    c.drop = lambda m: isinstance(m, AppendEntries)
    old = leader.propose(b"old")  # term 2, reaches nobody
    c.deliver()
    leader.step(AppendResponse(3, peer(2), peer(1), False, 0))  # deposed by term 3
    # From now on node 3 hears nothing, and node 2 gets no term-4 entry once it has "old".
    c.drop = lambda m: (
        isinstance(m, AppendEntries)
        and (
            m.to == peer(3) or (c.core(2).last_index >= old and any(e.term == 4 for e in m.entries))
        )
    )
    c.elect(1)  # term 4: its log ends with the term-2 entry, so it wins again
    assert leader.term == 4
    # Node 2 now holds "old" but not the term-4 noop: a majority (1, 2) has an entry of an
    # earlier term, which must not be committed by counting replicas.
    assert c.core(2).term_at(old) == 2 and c.core(2).last_index == old
    assert leader.follower_progress()[peer(2)].match == old
    assert leader.commit_index < old
    c.heal()
    c.tick(2)
    assert leader.commit_index > old
    assert c.core(2).commit_index > old


def test_pipelining_and_batching_limits() -> None:
    config = msgspec.structs.replace(CONFIG, max_entries_per_message=3, max_inflight=2)
    c = Cluster([1, 2], config=config)
    c.elect(1)
    leader = c.core(1)
    for i in range(10):
        leader.propose(bytes([i]))
    sent = appends(c[1].drain(), peer(2))
    # Two appends in flight (the window), three entries each (the batch limit).
    assert [len(m.entries) for m in sent] == [3, 3]
    assert sent[1].prev_index == sent[0].entries[-1].index
    c.pending.extend(sent)
    c.deliver()
    assert c.core(2).last_index == leader.last_index
    assert leader.commit_index == leader.last_index


def test_byte_limit_still_sends_one_entry() -> None:
    config = msgspec.structs.replace(CONFIG, max_bytes_per_message=10)
    c = Cluster([1, 2], config=config)
    c.elect(1)
    c.core(1).propose(b"x" * 100)
    c.core(1).propose(b"y" * 100)
    sent = appends(c[1].drain(), peer(2))
    assert [len(m.entries) for m in sent] == [1, 1]  # over the limit, yet one entry each
    c.pending.extend(sent)
    c.deliver()
    assert c.core(2).last_index == c.core(1).last_index


def test_lost_appends_are_recovered_by_heartbeats() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.drop = lambda m: isinstance(m, AppendEntries)
    index = c.core(1).propose(b"x")
    c.deliver()
    assert c.core(1).commit_index < index
    c.heal()
    c.tick(2)
    assert c.core(1).commit_index == index
    assert c.core(2).commit_index == index and c.core(3).commit_index == index


def test_committed_entries_are_applied_once_in_order_everywhere() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    for i in range(20):
        c.core(1).propose(str(i).encode())
        if i % 7 == 0:
            c.deliver()
    c.tick(2)
    expected = [str(i).encode() for i in range(20)]
    for member in c.members.values():
        commands = [e.data for e in member.applied if e.kind == EntryKind.COMMAND]
        assert commands == expected


def test_propose_on_a_follower_names_the_leader() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    with pytest.raises(NotLeader) as info:
        c.core(2).propose(b"x")
    assert info.value.leader == peer(1)
    with pytest.raises(NotLeader, match="no leader"):
        Cluster([1, 2, 3]).core(1).propose(b"x")


def test_ready_must_be_advanced_before_the_next() -> None:
    c = Cluster([1])
    c.core(1).campaign()
    rd = c.core(1).ready()
    assert not c.core(1).has_ready()
    with pytest.raises(UsageError, match="before advance"):
        c.core(1).ready()
    c[1].storage.save(rd.hard_state, rd.entries, rd.snapshot)
    c.core(1).advance(rd)
    with pytest.raises(UsageError, match="not the outstanding"):
        c.core(1).advance(rd)


def test_ready_fields_and_sync_duty() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.core(1).propose(b"x")
    rd = c.core(1).ready()
    assert rd.must_sync and rd.entries and rd.messages
    assert rd.soft_state is None and rd.hard_state is None
    c[1].storage.save(rd.hard_state, rd.entries, None)
    c.core(1).advance(rd)
    c.pending.extend(rd.messages)
    c.deliver()
    # The commit moved: persisting it is useful but needs no fsync.
    assert c[1].storage.hard_state.commit == c.core(1).commit_index


def test_hard_state_commit_is_not_required_to_sync() -> None:
    c = Cluster([1, 2])
    c.elect(1)
    c.core(2).step(Heartbeat(c.core(2).term, peer(1), peer(2), commit=c.core(1).commit_index))
    rd = c.core(2).ready()
    if rd.hard_state is not None:
        assert not rd.must_sync


@pytest.mark.parametrize(
    "bad",
    [
        AppendEntries(2, peer(1), peer(2), 1, 1, 0, (Entry(3, 2),)),  # gap after prev_index
        AppendEntries(2, peer(1), peer(2), 1, 1, 0, (Entry(2, 5),)),  # term beyond the message
        AppendEntries(2, peer(1), peer(2), 1, 1, 0, (Entry(2, 2, EntryKind.CONFIG, b"zz"),)),
        AppendEntries(2, peer(1), peer(9), 1, 1, 0),  # someone else's message
        AppendEntries(-1, peer(1), peer(2), 1, 1, 0),  # type: ignore[arg-type]
        Heartbeat(2, b"not a peer", peer(2), 0),  # type: ignore[arg-type]
        "not a message",
    ],
)
def test_malformed_message_is_dropped_with_a_log_line(
    bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    c = Cluster([1, 2, 3])
    before = (c.core(2).term, c.core(2).last_index, c.core(2).leader)
    with caplog.at_level(logging.WARNING, logger="node.groups.raft"):
        c.core(2).step(bad)  # type: ignore[arg-type]
    assert (c.core(2).term, c.core(2).last_index, c.core(2).leader) == before
    assert c[2].drain() == []
    assert any("dropped malformed" in r.getMessage() for r in caplog.records)


def test_bogus_acknowledgement_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    with caplog.at_level(logging.WARNING, logger="node.groups.raft"):
        c.core(1).step(AppendResponse(c.core(1).term, peer(2), peer(1), True, 10_000))
    assert c.core(1).commit_index <= c.core(1).last_index
    assert any("beyond the log" in r.getMessage() for r in caplog.records)


def test_restarted_follower_replays_committed_entries() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.core(1).propose(b"a")
    c.core(1).propose(b"b")
    c.deliver()
    c.tick(1)
    c[3].restart()
    replay = Member.drain(c[3])
    del replay
    commands = [e.data for e in c[3].applied if e.kind == EntryKind.COMMAND]
    assert commands == [b"a", b"b", b"a", b"b"]  # applied before and replayed after restart
    assert c[3].storage.hard_state.commit == c.core(3).commit_index


def test_hard_state_records_term_and_vote() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    assert c[2].storage.hard_state == HardState(
        term=c.core(1).term, vote=peer(1), commit=c.core(2).commit_index
    )


def test_role_of_everyone_after_election() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(election_ticks=10))
    c.elect(2)
    assert [c.core(n).role for n in (1, 2, 3)] == [Role.FOLLOWER, Role.LEADER, Role.FOLLOWER]
