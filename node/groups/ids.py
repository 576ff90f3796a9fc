"""The identifiers of a group: its id, the proof of knowing its key, its cluster id.

Group id chain (as in the seed, minus its sync-strategy step, which we do not have)::

    secret = Digest.from_name(key)            # a 64-hex key is taken as-is, else blake3(utf-8)
    gid    = secret.hashed()                  # blake3(secret): the id never reveals the key
    gid    = gid.derive(consensus.digest())   # the agreed consensus parameters
    gid    = gid.derive(machine.signature())  # the state machine and its types
    for s in sorted(validator signatures):    # ticket validators, order-independent
        gid = gid.derive(s)

``derive(x)`` is ``blake3(self || x)``. Members whose key, agreed timing, state machine or
ticket policy differ get different ids, so they never meet in one group.
"""

from __future__ import annotations

from collections.abc import Iterable

from node.groups.config import ConsensusConfig
from node.groups.raft.records import Entry
from node.primitives.codec import encode
from node.primitives.digest import Digest, GroupId
from node.primitives.keys import PeerId

_PROOF_LABEL = b"mosaik.groups.proof.v1"
_OBSERVER_LABEL = "mosaik.groups.observer"
_CLUSTER_LABEL = b"mosaik.groups.cluster.v1"


def group_secret(key: str | bytes | Digest) -> Digest:
    return Digest.from_name(key)


def group_id(
    secret: Digest,
    consensus: ConsensusConfig,
    machine_signature: Digest,
    ticket_signatures: Iterable[Digest] = (),
) -> GroupId:
    gid = secret.hashed().derive(consensus.digest()).derive(machine_signature)
    for signature in sorted(ticket_signatures):
        gid = gid.derive(signature)
    return gid


def observer_marker(gid: GroupId) -> Digest:
    """Advertised beside ``gid`` by members that only observe: they stay learners."""
    return gid.derive(_OBSERVER_LABEL)


def membership_proof(secret: Digest, gid: GroupId, prover: PeerId, verifier: PeerId) -> bytes:
    """What ``prover`` shows ``verifier`` to prove it knows the group key.

    The transport already authenticated both peer ids, and the proof is bound to both, so it
    is useless to anyone else and toward anyone else; QUIC encryption keeps it off the wire.
    """
    return secret.derive(_PROOF_LABEL + gid.bytes + prover.bytes + verifier.bytes).bytes


def cluster_id(first_entry: Entry) -> Digest:
    """A cluster is one lineage of the log: the id is a hash of its first entry (the bootstrap
    configuration, written by exactly one node)."""
    return Digest.hash(_CLUSTER_LABEL + encode(first_entry))
