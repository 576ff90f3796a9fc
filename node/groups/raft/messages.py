"""Raft's wire messages: frozen msgspec Structs, one tagged union ``Message``.

Every message names its ``sender`` and its destination ``to``; the shell must check that
``sender`` is the peer the connection authenticated before stepping a message into the core.
Decode with ``node.primitives.Decoder(Message)``; then ``problem(msg)`` tells whether a decoded
message is internally inconsistent (the core drops such messages with a log line).
"""

from __future__ import annotations

import msgspec

from node.errors import DecodeError
from node.groups.raft.records import Entry, EntryKind, Index, Membership, Snapshot, Term
from node.primitives.codec import Decoder
from node.primitives.keys import PeerId

_MEMBERSHIP = Decoder(Membership)


def decode_membership(data: bytes) -> Membership:
    """The configuration a CONFIG entry carries; ``DecodeError`` if it is not one."""
    membership = _MEMBERSHIP.decode(data)
    if not membership.voters:
        raise DecodeError("a configuration without voters")
    return membership


class VoteRequest(msgspec.Struct, frozen=True, tag="vote", array_like=True):
    """RequestVote, or a pre-vote (thesis 9.6) when ``pre_vote``: then ``term`` is the term the
    sender would campaign in, and neither side changes its term.
    ``transfer`` marks a campaign started by ``TimeoutNow``: it overrides the leader lease."""

    term: Term
    sender: PeerId
    to: PeerId
    last_index: Index
    last_term: Term
    pre_vote: bool = False
    transfer: bool = False


class VoteResponse(msgspec.Struct, frozen=True, tag="vote-resp", array_like=True):
    term: Term
    sender: PeerId
    to: PeerId
    granted: bool
    pre_vote: bool = False


class AppendEntries(msgspec.Struct, frozen=True, tag="append", array_like=True):
    """Entries following (``prev_index``, ``prev_term``), and the leader's commit index."""

    term: Term
    sender: PeerId
    to: PeerId
    prev_index: Index
    prev_term: Term
    commit: Index
    entries: tuple[Entry, ...] = ()


class AppendResponse(msgspec.Struct, frozen=True, tag="append-resp", array_like=True):
    """On success ``index`` is the last index known to match the leader's log.

    On rejection ``index`` is the rejected ``prev_index`` and (``hint_index``, ``hint_term``)
    is the follower's last entry whose term is at most the rejected ``prev_term``, which lets
    the leader skip a whole conflicting term per round trip (thesis 5.3's optimization).
    Also the answer to ``InstallSnapshot``.
    """

    term: Term
    sender: PeerId
    to: PeerId
    success: bool
    index: Index
    hint_index: Index = 0
    hint_term: Term = 0


class Heartbeat(msgspec.Struct, frozen=True, tag="heartbeat", array_like=True):
    """Leader liveness; ``commit`` is capped at the follower's known match index, and
    ``context`` carries the newest pending ReadIndex request being confirmed."""

    term: Term
    sender: PeerId
    to: PeerId
    commit: Index
    context: bytes = b""


class HeartbeatResponse(msgspec.Struct, frozen=True, tag="heartbeat-resp", array_like=True):
    term: Term
    sender: PeerId
    to: PeerId
    context: bytes = b""


class InstallSnapshot(msgspec.Struct, frozen=True, tag="snapshot", array_like=True):
    """The leader's latest snapshot, for a follower behind the compaction point."""

    term: Term
    sender: PeerId
    to: PeerId
    snapshot: Snapshot


class TimeoutNow(msgspec.Struct, frozen=True, tag="timeout-now", array_like=True):
    """Leadership transfer: the recipient campaigns at once (thesis 3.10)."""

    term: Term
    sender: PeerId
    to: PeerId


class ReadIndexRequest(msgspec.Struct, frozen=True, tag="read", array_like=True):
    """A follower's linearizable read, forwarded to the leader; ``context`` identifies it."""

    term: Term
    sender: PeerId
    to: PeerId
    context: bytes


class ReadIndexResponse(msgspec.Struct, frozen=True, tag="read-resp", array_like=True):
    """The read may be served once the follower has applied ``index``."""

    term: Term
    sender: PeerId
    to: PeerId
    context: bytes
    index: Index


Message = (
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
)

MESSAGE_TYPES: tuple[type, ...] = (
    VoteRequest,
    VoteResponse,
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    TimeoutNow,
    ReadIndexRequest,
    ReadIndexResponse,
)


def problem(msg: object) -> str | None:
    """Why ``msg`` is not a well-formed Raft message, or None if it is.

    Types and ranges are checked by the decoder; this checks what a decoder cannot: that
    entries are contiguous after ``prev_index`` and that no term exceeds the message's term.
    """
    if not isinstance(msg, MESSAGE_TYPES):
        return f"not a Raft message: {type(msg).__name__}"
    term = getattr(msg, "term", None)
    if not isinstance(term, int) or term < 0:
        return f"term {term!r} is not a non-negative integer"
    if not isinstance(getattr(msg, "sender", None), PeerId) or not isinstance(
        getattr(msg, "to", None), PeerId
    ):
        return "sender and to must be peer ids"
    if isinstance(msg, AppendEntries):
        expected, last_term = msg.prev_index + 1, msg.prev_term
        for entry in msg.entries:
            if not isinstance(entry, Entry):
                return f"an entry is a {type(entry).__name__}"
            if entry.index != expected:
                return f"entry index {entry.index} where {expected} was expected"
            if not last_term <= entry.term <= msg.term:
                return f"entry {entry.index} has term {entry.term} out of order"
            if entry.kind is EntryKind.CONFIG:
                try:
                    decode_membership(entry.data)
                except DecodeError as exc:
                    return f"entry {entry.index} is not a valid configuration: {exc}"
            expected, last_term = expected + 1, entry.term
    elif isinstance(msg, InstallSnapshot):
        meta = msg.snapshot.meta
        if meta.term > msg.term or meta.index == 0 or not meta.membership.voters:
            return f"snapshot at {meta.index} (term {meta.term}) is not installable"
    return None
