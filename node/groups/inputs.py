"""What reaches a group runtime's driver: typed inputs, queued in order and applied in one
place (``GroupRuntime._apply_input``), between the core's ``Ready`` batches.

Events (past tense) report what happened on the network; commands (imperative) carry a
caller's request and the future it waits on. The Raft clock and catalog changes are not
queued: they are level-triggered (a tick count and a dirty flag), handled before the queue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TypeAlias

from node.groups.pending import Assignment
from node.groups.raft import Message
from node.groups.wire import Forward
from node.primitives import PeerId


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A Raft message from a peer whose stream authenticated its sender and whose lineage is
    ours: step the core with it."""

    message: Message


@dataclass(frozen=True, slots=True)
class ForwardReceived:
    """A follower forwarded commands: append them if we lead, and answer it either way."""

    peer: PeerId
    forward: Forward


@dataclass(frozen=True, slots=True)
class LinkLost:
    """Our link to ``peer`` went down: the core stops streaming entries to it for a while."""

    peer: PeerId


@dataclass(frozen=True, slots=True)
class Propose:
    """Append ``datas`` at consecutive indices if we lead; resolve ``future`` with where, or
    with ``NotLeader``/``ProposalDropped``. Skipped if ``future`` is already done."""

    datas: tuple[bytes, ...]
    future: asyncio.Future[Assignment]


@dataclass(frozen=True, slots=True)
class ConfirmRead:
    """Start a ReadIndex for the strong read ``context``; fail ``future`` with ``NotLeader``
    if no leader can confirm it (``Ready.read_states`` resolves it otherwise)."""

    context: bytes
    future: asyncio.Future[int]


@dataclass(frozen=True, slots=True)
class TransferLeadership:
    """Hand leadership to ``target`` (before this node leaves the group)."""

    target: PeerId


Input: TypeAlias = (
    MessageReceived | ForwardReceived | LinkLost | Propose | ConfirmRead | TransferLeadership
)
