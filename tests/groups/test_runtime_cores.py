"""The runtime's pure parts: ids, membership decisions, candidates, lineages, fragments."""

from __future__ import annotations

import msgspec
import pytest

from node.discovery import PROTOCOL_VERSION, PeerEntry, PeerInfo
from node.errors import ConfigError
from node.groups import ConsensusConfig, group_id, group_secret
from node.groups.ids import cluster_id, membership_proof, observer_marker
from node.groups.lineage import Lineage
from node.groups.membership import Candidate, MembershipView, first_configuration, next_change
from node.groups.peers import GroupPeers
from node.groups.raft import ConfChange, ConfChangeKind, Entry, FollowerProgress, Membership
from node.groups.wire import ClusterState, Forward, Reassembly, fragments, frame_decoder
from node.primitives import Digest, PeerId, Ticket, encode
from node.tickets import JwtTicketBuilder, JwtTicketValidator

NETWORK = Digest.from_name("groups-tests")
MACHINE = Digest.from_name("machine")


def peer(n: int) -> PeerId:
    return PeerId(bytes([n]) * 32)


# -- ids ------------------------------------------------------------------------------------


def test_group_id_is_the_documented_chain() -> None:
    consensus = ConsensusConfig()
    secret = group_secret("orders")
    assert secret == Digest.hash(b"orders")
    v1, v2 = Digest.from_name("v1"), Digest.from_name("v2")
    expected = secret.hashed().derive(consensus.digest()).derive(MACHINE)
    for signature in sorted([v1, v2]):
        expected = expected.derive(signature)
    assert group_id(secret, consensus, MACHINE, [v2, v1]) == expected
    assert group_id(secret, consensus, MACHINE, [v1, v2]) == expected


def test_group_id_changes_with_agreed_parameters_only() -> None:
    secret = group_secret("orders")
    base = group_id(secret, ConsensusConfig(), MACHINE)
    for agreed in ({"heartbeat_interval": 0.2}, {"election_ticks": 20}, {"pre_vote": False}):
        changed = msgspec.structs.replace(ConsensusConfig(), **agreed)
        assert group_id(secret, changed, MACHINE) != base
    local = msgspec.structs.replace(ConsensusConfig(), member_timeout=5, snapshot_every=7)
    assert group_id(secret, local, MACHINE) == base
    assert group_id(group_secret("other"), ConsensusConfig(), MACHINE) != base
    assert group_id(secret, ConsensusConfig(), Digest.from_name("m2")) != base


def test_proofs_bind_both_peers_and_the_key() -> None:
    secret, gid = group_secret("k"), Digest.from_name("g")
    proof = membership_proof(secret, gid, peer(1), peer(2))
    assert proof != membership_proof(secret, gid, peer(2), peer(1))
    assert proof != membership_proof(secret, gid, peer(1), peer(3))
    assert proof != membership_proof(group_secret("x"), gid, peer(1), peer(2))
    assert observer_marker(gid) != gid


@pytest.mark.parametrize(
    "field",
    [
        {"heartbeat_interval": 0},
        {"election_ticks": 1},
        {"member_timeout": -1},
        {"bootstrap_delay": -0.1},
        {"snapshot_every": 0},
    ],
)
def test_invalid_consensus_config_names_the_field(field: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=next(iter(field))):
        ConsensusConfig(**field)  # type: ignore[arg-type]


# -- first configuration --------------------------------------------------------------------

KNOWN_EMPTY = Candidate(cluster_known=True, in_cluster=False)


def test_only_the_lowest_of_enough_members_bootstraps() -> None:
    others = {peer(2): KNOWN_EMPTY, peer(3): KNOWN_EMPTY}
    formed = first_configuration(peer(1), False, others, 3, 5)
    assert formed == Membership.of([peer(1), peer(2), peer(3)])
    assert (
        first_configuration(peer(2), False, {peer(1): KNOWN_EMPTY, peer(3): KNOWN_EMPTY}, 3, 5)
        is None
    )
    assert first_configuration(peer(1), False, {peer(2): KNOWN_EMPTY}, 3, 5) is None


def test_no_bootstrap_beside_an_existing_cluster_or_unknown_peers() -> None:
    in_cluster = Candidate(cluster_known=True, in_cluster=True)
    unknown = Candidate(cluster_known=False, in_cluster=False)
    assert first_configuration(peer(1), False, {peer(2): in_cluster}, 1, 5) is None
    assert first_configuration(peer(1), False, {peer(2): unknown}, 1, 5) is None
    assert first_configuration(peer(1), True, {}, 1, 5) is None  # observers never bootstrap


def test_bootstrap_set_is_odd_and_capped_and_skips_observers() -> None:
    observer = Candidate(cluster_known=True, in_cluster=False, observer=True)
    others = {peer(n): KNOWN_EMPTY for n in range(2, 8)} | {peer(0): observer}
    formed = first_configuration(peer(1), False, others, 1, 5)
    assert formed is not None and formed.voters == tuple(peer(n) for n in range(1, 6))
    four = {peer(n): KNOWN_EMPTY for n in (2, 3, 4)}
    formed = first_configuration(peer(1), False, four, 1, 5)
    assert formed is not None and len(formed.voters) == 3
    formed = first_configuration(peer(1), False, {peer(2): KNOWN_EMPTY}, 2, 5)
    assert formed is not None and len(formed.voters) == 2  # exactly bootstrap_expect


# -- next change ----------------------------------------------------------------------------


def progress(match: int, *, learner: bool = True, active: bool = True) -> FollowerProgress:
    return FollowerProgress(match, match + 1, "replicate", learner, active)


def view(membership: Membership, **overrides: object) -> MembershipView:
    fields: dict[str, object] = {
        "leader": peer(1),
        "membership": membership,
        "candidates": {p: KNOWN_EMPTY for p in membership.members if p != peer(1)},
        "revoked": set(),
        "absent_for": {},
        "progress": {p: progress(100) for p in membership.members if p != peer(1)},
        "commit": 100,
    }
    fields.update(overrides)
    return MembershipView(**fields)  # type: ignore[arg-type]


def plan(v: MembershipView, max_voters: int = 5) -> ConfChange | None:
    return next_change(v, max_voters=max_voters, member_timeout=10, catch_up_lag=8)


def test_new_candidates_become_learners_one_at_a_time() -> None:
    alone = Membership.of([peer(1)])
    change = plan(view(alone, candidates={peer(3): KNOWN_EMPTY, peer(2): KNOWN_EMPTY}))
    assert change == ConfChange(ConfChangeKind.ADD_LEARNER, peer(2))


def test_learners_are_promoted_in_pairs_to_keep_voters_odd() -> None:
    one_learner = Membership.of([peer(1)], [peer(2)])
    assert plan(view(one_learner)) is None
    two = Membership.of([peer(1)], [peer(2), peer(3)])
    assert plan(view(two)) == ConfChange(ConfChangeKind.ADD_VOTER, peer(2))
    even = Membership.of([peer(1), peer(2)], [peer(3)])
    assert plan(view(even)) == ConfChange(ConfChangeKind.ADD_VOTER, peer(3))
    full = Membership.of([peer(n) for n in range(1, 6)], [peer(6), peer(7)])
    assert plan(view(full)) is None
    assert plan(view(Membership.of([peer(1), peer(2)], [peer(3)])), max_voters=2) is None


def test_only_caught_up_active_non_observers_are_promoted() -> None:
    two = Membership.of([peer(1)], [peer(2), peer(3)])
    behind = {peer(2): progress(10), peer(3): progress(100)}
    assert plan(view(two, progress=behind)) is None
    idle = {peer(2): progress(100, active=False), peer(3): progress(100)}
    assert plan(view(two, progress=idle)) is None
    observer = Candidate(cluster_known=True, in_cluster=True, observer=True)
    watched = {peer(2): observer, peer(3): KNOWN_EMPTY}
    assert plan(view(two, candidates=watched)) is None


def test_revoked_members_go_first_then_long_absent_ones() -> None:
    three = Membership.of([peer(1), peer(2), peer(3)], [peer(4)])
    assert plan(view(three, revoked={peer(4)})) == ConfChange(ConfChangeKind.REMOVE, peer(4))
    absent = {peer(2): 3.0, peer(4): 11.0}
    assert plan(view(three, absent_for=absent)) == ConfChange(ConfChangeKind.REMOVE, peer(4))
    assert plan(view(three, absent_for={peer(2): 9.9})) is None
    assert plan(view(three, absent_for={peer(1): 99.0})) is None  # never the leader itself


# -- candidates -----------------------------------------------------------------------------

SECRET = b"groups-test-hmac-secret-32-bytes"


def info(n: int, groups: frozenset[Digest], tickets: tuple[Ticket, ...] = ()) -> PeerInfo:
    key_peer = peer(n)
    return PeerInfo(
        PeerEntry(
            protocol=PROTOCOL_VERSION,
            network_id=NETWORK,
            peer_id=key_peer,
            start_ms=1,
            update_ms=1,
            groups=groups,
            tickets=tuple(sorted(tickets, key=lambda t: t.id())),
        )
    )


def test_candidates_advertise_the_group_and_pass_tickets() -> None:
    gid = Digest.from_name("g")
    validator = JwtTicketValidator({"HS256": SECRET})
    peers = GroupPeers(peer(1), gid, observer_marker(gid), [validator])
    good = JwtTicketBuilder(SECRET, "HS256").expires_in(60).mint(peer(2), now=1000)
    infos = [
        info(2, frozenset({gid}), (good,)),
        info(3, frozenset({gid})),
        info(4, frozenset()),
        info(
            5,
            frozenset({gid, observer_marker(gid)}),
            (JwtTicketBuilder(SECRET, "HS256").expires_in(120).mint(peer(5), now=1000),),
        ),
    ]
    added, removed = peers.refresh(infos, 1000.0, 0.0)
    assert added == {peer(2), peer(5)} and not removed
    assert set(peers.revoked) == {peer(3)}
    assert peers.observers == {peer(5)}
    assert peers.next_deadline() == 1060
    added, removed = peers.refresh(infos[1:], 1001.0, 5.0)
    assert removed == {peer(2)} and peers.gone_since[peer(2)] == 5.0
    assert peers.absent_for(peer(2), 8.0, since=0.0) == 3.0


# -- lineages -------------------------------------------------------------------------------


def test_lineage_yields_only_without_commands() -> None:
    a = cluster_id(Entry(1, 1, data=b"a"))
    b = cluster_id(Entry(1, 1, data=b"b"))
    low, high = sorted([a, b])
    empty_high = Lineage(ClusterState(high, False))
    verdict = empty_high.compare(peer(2), ClusterState(low, False))
    assert verdict.new_rival and verdict.yield_to == low
    assert empty_high.compare(peer(2), ClusterState(low, False)).new_rival is False
    empty_low = Lineage(ClusterState(low, False))
    assert empty_low.compare(peer(2), ClusterState(high, False)).yield_to is None
    assert empty_low.compare(peer(3), ClusterState(high, True)).yield_to == high
    full = Lineage(ClusterState(high, True))
    verdict = full.compare(peer(2), ClusterState(low, True))
    assert verdict.deadlock and verdict.yield_to is None
    assert full.compare(peer(2), ClusterState(high, True)).rival_gone


def test_an_empty_log_follows_the_first_lineage_that_reaches_it() -> None:
    a, b = Digest.from_name("a"), Digest.from_name("b")
    lineage = Lineage(ClusterState())
    assert lineage.accepts(None) and lineage.accepts(ClusterState())
    assert lineage.accepts(ClusterState(a))
    assert not lineage.accepts(ClusterState(b))
    lineage.set(ClusterState(b))
    assert lineage.accepts(ClusterState(b)) and not lineage.accepts(ClusterState(a))


# -- fragments ------------------------------------------------------------------------------


def test_oversized_frames_travel_in_fragments() -> None:
    body = encode(Forward(7, (b"x" * 100_000, b"y")))
    pieces = list(fragments(body, 16_384))
    assert len(pieces) > 6 and all(len(p) <= 16_384 for p in pieces)
    reassembly = Reassembly()
    joined = [reassembly.add(frame_decoder.decode(p)) for p in pieces]  # type: ignore[arg-type]
    assert joined[:-1] == [None] * (len(pieces) - 1)
    assert joined[-1] == body
    assert list(fragments(b"small", 16_384)) == [b"small"]
