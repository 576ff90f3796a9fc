"""Who should be in a group's configuration: pure decisions, no I/O, no clock.

The runtime gathers what it knows (discovered candidates, the leader's view of each follower,
how long members have been gone) and asks:

- ``first_configuration``: may this empty node form the first configuration, and with whom?
  Once ``bootstrap_expect`` members that may vote are discovered and none of them already
  belongs to a cluster, the lowest peer id among them forms it with the lowest of them (as
  many as ``bootstrap_expect``, more if already discovered, up to the odd voter cap). Every
  other node waits to be added.
- ``next_change``: the single configuration change a leader should propose now, if any, in
  this order: remove a member whose tickets were revoked; remove a member gone or silent for
  ``member_timeout``; add a discovered candidate as a learner; promote a caught-up learner to
  voter when that keeps (or restores) an odd number of voters within ``max_voters``.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from node.groups.raft import ConfChange, ConfChangeKind, FollowerProgress, Membership
from node.primitives import PeerId


def voter_cap(max_voters: int) -> int:
    """The largest odd number of voters within ``max_voters``."""
    return max_voters if max_voters % 2 else max_voters - 1


@dataclass(frozen=True, slots=True)
class Candidate:
    """A discovered peer that advertises the group and passes its tickets."""

    cluster_known: bool
    """Whether its log lineage is known (from a handshake in either direction)."""
    in_cluster: bool
    """Whether its log is not empty (it belongs to a cluster already)."""
    observer: bool = False


def first_configuration(
    self_id: PeerId,
    self_observer: bool,
    candidates: Mapping[PeerId, Candidate],
    bootstrap_expect: int,
    max_voters: int,
) -> Membership | None:
    """The first configuration if this node must form it now, else None."""
    if self_observer or any(c.in_cluster for c in candidates.values()):
        return None
    eligible = sorted({self_id, *(p for p, c in candidates.items() if not c.observer)})
    if len(eligible) < bootstrap_expect or eligible[0] != self_id:
        return None
    if not all(c.cluster_known for c in candidates.values()):
        return None  # a peer we have not heard from may already lead a cluster
    count = min(len(eligible), voter_cap(max_voters))
    if count > bootstrap_expect and count % 2 == 0:
        count -= 1
    return Membership.of(eligible[:count])


@dataclass(frozen=True, slots=True)
class MembershipView:
    """What the leader knows when deciding on a change."""

    leader: PeerId
    membership: Membership
    candidates: Mapping[PeerId, Candidate]
    revoked: Set[PeerId]
    absent_for: Mapping[PeerId, float]
    """Seconds each member (not the leader) has been gone from the candidates or silent."""
    progress: Mapping[PeerId, FollowerProgress]
    commit: int


def next_change(
    view: MembershipView, *, max_voters: int, member_timeout: float, catch_up_lag: int
) -> ConfChange | None:
    membership = view.membership
    others = [p for p in membership.members if p != view.leader]
    for peer in sorted(others, key=lambda p: (p not in membership.voters, p)):
        if peer in view.revoked:
            return ConfChange(ConfChangeKind.REMOVE, peer)
    for peer in sorted(others, key=lambda p: (p not in membership.voters, p)):
        if view.absent_for.get(peer, 0.0) >= member_timeout:
            return ConfChange(ConfChangeKind.REMOVE, peer)
    for peer in sorted(view.candidates):
        if peer not in membership and peer != view.leader and peer not in view.revoked:
            return ConfChange(ConfChangeKind.ADD_LEARNER, peer)
    promotable = [
        peer
        for peer in membership.learners
        if _caught_up(view, peer, catch_up_lag)
        and (candidate := view.candidates.get(peer)) is not None
        and not candidate.observer
    ]
    voters = len(membership.voters)
    cap = voter_cap(max_voters)
    if promotable and voters < cap and (voters % 2 == 0 or len(promotable) >= 2):
        return ConfChange(ConfChangeKind.ADD_VOTER, min(promotable))
    return None


def _caught_up(view: MembershipView, peer: PeerId, lag: int) -> bool:
    progress = view.progress.get(peer)
    return progress is not None and progress.recent_active and progress.match + lag >= view.commit
