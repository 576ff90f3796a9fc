"""What the core hands to its shell: ``Ready`` batches, roles and read states."""

from __future__ import annotations

import enum

import msgspec

from node.groups.raft.messages import Message
from node.groups.raft.records import Entry, HardState, Snapshot
from node.primitives.keys import PeerId


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class SoftState(msgspec.Struct, frozen=True):
    """Volatile state, reported when it changed: who leads, and this node's role."""

    leader: PeerId | None
    role: Role


class ReadState(msgspec.Struct, frozen=True):
    """A confirmed ReadIndex: the read identified by ``context`` is linearizable once the
    local state machine has applied ``index``."""

    index: int
    context: bytes


class FollowerProgress(msgspec.Struct, frozen=True):
    """The leader's view of one follower (for promoting learners and for metrics)."""

    match: int
    next: int
    state: str
    is_learner: bool
    recent_active: bool


class Ready(msgspec.Struct, frozen=True):
    """One batch of work for the shell. Its fields are listed in the order they must be handled.

    1. ``soft_state``: informational (leader changes), no duty.
    2. ``hard_state``, ``snapshot``, ``entries``: persist them in ONE atomic, durable
       ``Storage.save(hard_state, entries, snapshot)`` BEFORE sending any of ``messages``: a
       vote or an acknowledgement must never leave the node before the state it promises.
    3. ``snapshot`` (after the save): restore the state machine from ``snapshot.data``.
    4. ``committed_entries``: apply them in order (they are durable by step 2); then the state
       machine has applied every index up to the last one.
    5. ``read_states``: answer each read once the state machine has applied its ``index``.
    6. ``messages``: send them, after step 2 (they may go out while 3-5 run).
    7. ``RaftNode.advance(ready)``: acknowledges steps 2-4; only then ``ready()`` again.

    ``must_sync`` is False when only the commit index changed (losing it is harmless), so the
    save need not wait for fsync.
    """

    soft_state: SoftState | None
    hard_state: HardState | None
    snapshot: Snapshot | None
    entries: tuple[Entry, ...]
    committed_entries: tuple[Entry, ...]
    read_states: tuple[ReadState, ...]
    messages: tuple[Message, ...]
    must_sync: bool


class Outbox:
    """Messages and read states gathered for the next Ready."""

    __slots__ = ("messages", "read_states")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.read_states: list[ReadState] = []

    def send(self, msg: Message) -> None:
        self.messages.append(msg)

    def take(self) -> tuple[tuple[Message, ...], tuple[ReadState, ...]]:
        messages, read_states = tuple(self.messages), tuple(self.read_states)
        self.messages, self.read_states = [], []
        return messages, read_states
