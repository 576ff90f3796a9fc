"""Log lineages (clusters) of a group, and what to do when two meet. Sans-I/O.

A cluster id names one lineage of the log: the hash of entry 1, the first configuration,
which exactly one node writes (``ids.cluster_id``). Raft messages are stepped only between
members of one lineage, since two lineages can hold different entries under equal (index,
term) and Raft's log matching would not notice. An empty node follows the first lineage
that reaches it (``bound``) until its log gets entry 1.

A peer of another lineage is a rival (a second cluster formed in a partition, or with too
small a ``bootstrap_expect``). Rivals are logged, counted and never added to our
configuration. A lineage that holds no command yields to its rival (to the one with data,
else to the lower id): its members empty their logs, keeping term and vote, and are then
added to the other cluster like new members. Two lineages that both hold commands are left
alone: merging them would discard one side's committed data, so an operator decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from node.groups import ids
from node.groups.raft import EntryKind, Storage
from node.groups.wire import ClusterState
from node.primitives import Decoder, Digest, PeerId


class SnapshotEnvelope(msgspec.Struct, frozen=True, array_like=True):
    """What a Raft snapshot's data holds: the lineage, and the state machine's own bytes."""

    cluster: Digest
    has_data: bool
    machine: bytes


envelope_decoder = Decoder(SnapshotEnvelope)


def scan_lineage(storage: Storage) -> ClusterState:
    """The lineage of a log that has no snapshot: entry 1, and whether any command follows."""
    last = storage.last_index()
    if last == 0:
        return ClusterState()
    cluster = ids.cluster_id(storage.entries(1, 2)[0])
    lo = 1
    while lo <= last:
        chunk = storage.entries(lo, last + 1, 4 << 20)
        if any(e.kind is EntryKind.COMMAND for e in chunk):
            return ClusterState(cluster, True)
        lo = chunk[-1].index + 1
    return ClusterState(cluster, False)


@dataclass(frozen=True, slots=True)
class Comparison:
    """What meeting a peer's lineage means."""

    new_rival: bool = False
    """First sight of this rival lineage at this peer (log it once)."""
    rival_gone: bool = False
    """The peer was a rival and is not any more."""
    yield_to: Digest | None = None
    """Our lineage holds no command and should make way for this one."""
    deadlock: bool = False
    """Both lineages hold commands: nothing is done automatically."""


class Lineage:
    """Our lineage, the one an empty log follows, and the rival peers."""

    def __init__(self, cluster: ClusterState) -> None:
        self.cluster = cluster
        self.bound: Digest | None = None
        self.rivals: dict[PeerId, Digest] = {}

    def set(self, cluster: ClusterState) -> None:
        self.cluster = cluster
        if cluster.id is not None:
            self.bound = None

    def compare(self, peer: PeerId, theirs: ClusterState) -> Comparison:
        ours = self.cluster
        if theirs.id is None or ours.id is None or theirs.id == ours.id:
            gone = self.rivals.pop(peer, None) is not None
            return Comparison(rival_gone=gone)
        new = self.rivals.get(peer) != theirs.id
        self.rivals[peer] = theirs.id
        if not ours.has_data and (theirs.has_data or theirs.id < ours.id):
            return Comparison(new_rival=new, yield_to=theirs.id)
        return Comparison(new_rival=new, deadlock=ours.has_data and theirs.has_data)

    def accepts(self, theirs: ClusterState | None) -> bool:
        """Whether Raft messages from a peer of lineage ``theirs`` may be stepped."""
        if theirs is None or theirs.id is None:
            return True
        if self.cluster.id is not None:
            return theirs.id == self.cluster.id
        if self.bound is None:
            self.bound = theirs.id
        return theirs.id == self.bound

    def abandoned(self, winner: Digest) -> None:
        """Our log was emptied to follow ``winner``."""
        self.cluster = ClusterState()
        self.bound = winner
        self.rivals.clear()
