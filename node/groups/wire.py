"""The ``/mosaik/groups/1`` protocol: handshake, frames, and fragments of oversized frames.

Each node sends to a fellow member over a stream it opened itself, one stream per group, on
the pooled QUIC connection between the two nodes (either side's dial serves both directions).
So a pair of members has two streams per group, one per direction, and two nodes dialling at
once need no tie-break. On a new stream:

1. the opener sends ``Hello``: the group id, a proof that it knows the group key (bound to
   both peer ids, see ``ids.membership_proof``) and the state of its log lineage (cluster);
2. the acceptor answers ``Welcome`` (its own proof and cluster) or ``Refused`` with a group
   close code (``GROUP_NOT_FOUND``, ``GROUP_NOT_ALLOWED``, ``GROUP_INVALID_PROOF``) and ends
   the stream; a malformed handshake closes the connection with ``GROUP_INVALID_HANDSHAKE``;
3. then only the opener sends: ``GroupFrame``s. The acceptor ends the stream (after a
   ``Refused``) when it stops admitting the opener, e.g. on ticket revocation.

A frame whose encoding exceeds the transport's frame limit (a large snapshot) travels as
consecutive ``Fragment``s that the receiver joins and decodes as one frame.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from node.groups.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from node.primitives.codec import Decoder, encode
from node.primitives.digest import Digest, GroupId
from node.primitives.keys import PeerId

ALPN = "/mosaik/groups/1"
HANDSHAKE_TIMEOUT = 5.0
MAX_REASSEMBLED = 512 * 1024 * 1024
"""Largest frame accepted in fragments (a snapshot); beyond it the stream is dropped."""
_FRAGMENT_OVERHEAD = 64


class ClusterState(msgspec.Struct, frozen=True, array_like=True):
    """A member's log lineage: ``id`` is None while its log is empty; ``has_data`` once any
    command entered its log (a lineage without commands may yield to a rival, see runtime)."""

    id: Digest | None = None
    has_data: bool = False


class Hello(msgspec.Struct, frozen=True, tag="hello", array_like=True):
    group: GroupId
    proof: bytes
    cluster: ClusterState


class Welcome(msgspec.Struct, frozen=True, tag="welcome", array_like=True):
    proof: bytes
    cluster: ClusterState


class Refused(msgspec.Struct, frozen=True, tag="refused", array_like=True):
    code: int
    reason: str


class ClusterChanged(msgspec.Struct, frozen=True, tag="cluster", array_like=True):
    """The sender's lineage changed (its log got its first entry, or it yielded to a rival)."""

    cluster: ClusterState


class Forward(msgspec.Struct, frozen=True, tag="fwd", array_like=True):
    """A follower's commands for the leader to append, in order."""

    request: int
    commands: tuple[bytes, ...]


class ForwardAccepted(msgspec.Struct, frozen=True, tag="fwd-ok", array_like=True):
    """The leader appended the forwarded commands at ``index``... in ``term``."""

    request: int
    index: int
    term: int


class ForwardRefused(msgspec.Struct, frozen=True, tag="fwd-no", array_like=True):
    """Not appended; ``leader`` is who the refusing node believes leads (None: unknown)."""

    request: int
    leader: PeerId | None
    reason: str


class Fragment(msgspec.Struct, frozen=True, tag="frag", array_like=True):
    data: bytes
    last: bool


GroupFrame = (
    VoteRequest
    | VoteResponse
    | AppendEntries
    | AppendResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | TimeoutNow
    | ReadIndexRequest
    | ReadIndexResponse
    | ClusterChanged
    | Forward
    | ForwardAccepted
    | ForwardRefused
    | Fragment
)

frame_decoder: Decoder[GroupFrame] = Decoder(GroupFrame)
hello_decoder = Decoder(Hello)
reply_decoder: Decoder[Welcome | Refused] = Decoder(Welcome | Refused)


def fragments(body: bytes, max_frame: int) -> Iterator[bytes]:
    """``body`` as it goes on the wire: itself, or encoded ``Fragment``s within ``max_frame``."""
    if len(body) <= max_frame:
        yield body
        return
    size = max_frame - _FRAGMENT_OVERHEAD
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        yield encode(Fragment(piece, start + size >= len(body)))


class Reassembly:
    """Joins ``Fragment``s from one stream (they arrive in order)."""

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, fragment: Fragment) -> bytes | None:
        """The whole body once the last fragment arrived; ``ValueError`` beyond the limit."""
        self._size += len(fragment.data)
        if self._size > MAX_REASSEMBLED:
            self._parts, self._size = [], 0
            raise ValueError(f"a fragmented frame exceeds {MAX_REASSEMBLED} bytes")
        self._parts.append(fragment.data)
        if not fragment.last:
            return None
        body = b"".join(self._parts)
        self._parts, self._size = [], 0
        return body
