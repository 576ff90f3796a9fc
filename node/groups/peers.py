"""Which discovered peers may be members of one group, and what we know of each.

A candidate is a catalog peer that advertises the group id and whose tickets pass every
validator of the group. The set is recomputed from the catalog on every catalog event and
when the earliest ticket expiry passes; the runtime compares it with the configuration.
Sans-I/O: the catalog and the time are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable

from node.discovery import PeerInfo
from node.groups.membership import Candidate
from node.groups.wire import ClusterState
from node.primitives import Digest, GroupId, PeerId
from node.tickets import TicketGate, TicketsRejected, TicketValidator

NOT_IN_CATALOG = "not in the catalog"
NOT_ADVERTISED = "does not advertise the group"


class GroupPeers:
    """Candidates, revoked peers, lineages and liveness of a group's peers."""

    def __init__(
        self,
        self_id: PeerId,
        gid: GroupId,
        observer_marker: Digest,
        validators: Iterable[TicketValidator],
    ) -> None:
        self._self = self_id
        self._gid = gid
        self._observer_marker = observer_marker
        self._gate: TicketGate[PeerId] = TicketGate(validators)
        self.observers: set[PeerId] = set()
        self.candidates: set[PeerId] = set()
        self.revoked: dict[PeerId, str] = {}
        self.clusters: dict[PeerId, ClusterState] = {}
        self.last_heard: dict[PeerId, float] = {}
        self.gone_since: dict[PeerId, float] = {}
        self.removed_at: dict[PeerId, float] = {}

    def check(self, info: PeerInfo | None, now: float) -> str | None:
        """Why ``info``'s peer may not be a member now, or None if it may."""
        if info is None:
            return NOT_IN_CATALOG
        if self._gid not in info.groups:
            return NOT_ADVERTISED
        try:
            self._gate.admit(info.peer_id, info.entry, now)
        except TicketsRejected as exc:
            return f"tickets rejected: {exc}"
        return None

    def refresh(
        self, infos: Iterable[PeerInfo], now: float, mono: float
    ) -> tuple[set[PeerId], set[PeerId]]:
        """Recompute from the catalog at unix time ``now`` (for tickets) and monotonic time
        ``mono`` (for absences); returns (peers that became candidates, that stopped)."""
        candidates: set[PeerId] = set()
        observers: set[PeerId] = set()
        revoked: dict[PeerId, str] = {}
        for info in infos:
            peer = info.peer_id
            if peer == self._self or self._gid not in info.groups:
                continue
            reason = self.check(info, now)
            if reason is not None:
                revoked[peer] = reason
                continue
            candidates.add(peer)
            if self._observer_marker in info.groups:
                observers.add(peer)
        added, removed = candidates - self.candidates, self.candidates - candidates
        for peer in removed:
            self._gate.release(peer)
            self.gone_since.setdefault(peer, mono)
            self.clusters.pop(peer, None)
        for peer in added:
            self.gone_since.pop(peer, None)
        self.candidates, self.observers, self.revoked = candidates, observers, revoked
        return added, removed

    def next_deadline(self) -> float | None:
        """When the earliest admitted ticket expires (refresh then)."""
        return self._gate.next_deadline()

    def expired(self, now: float) -> bool:
        return bool(self._gate.expired(now))

    def heard(self, peer: PeerId, now: float) -> None:
        self.last_heard[peer] = now

    def addable(self, peer: PeerId) -> bool:
        """A candidate that may be (re-)added: not removed since we last heard from it, so a
        member removed for silence is not re-added until it speaks again."""
        removed = self.removed_at.get(peer)
        return peer in self.candidates and (
            removed is None or self.last_heard.get(peer, removed) > removed
        )

    def candidate(self, peer: PeerId) -> Candidate:
        cluster = self.clusters.get(peer)
        return Candidate(
            cluster_known=cluster is not None,
            in_cluster=cluster is not None and cluster.id is not None,
            observer=peer in self.observers,
        )

    def absent_for(self, peer: PeerId, now: float, since: float) -> float:
        """Seconds ``peer`` has been gone or silent at monotonic ``now``, counting from ``since``
        at the earliest."""
        gone = self.gone_since.get(peer)
        if peer not in self.candidates:
            return now - max(gone if gone is not None else since, since)
        return now - max(self.last_heard.get(peer, since), since)
