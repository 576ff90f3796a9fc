"""Counters of one group on this node, read by the metrics collector and ``status()``."""

from __future__ import annotations

from dataclasses import dataclass, field

from node.groups.raft import HardState, Role
from node.primitives import PeerId


@dataclass(slots=True)
class GroupStats:
    leader: PeerId | None = None
    role: Role = Role.FOLLOWER
    term: int = 0
    elections: int = 0
    """Campaigns this node started (terms in which it voted for itself)."""
    leader_changes: int = 0
    proposals: int = 0
    """Commands this node appended as leader (its own and forwarded ones)."""
    forwarded: int = 0
    """Commands this node forwarded to a leader."""
    commands_applied: int = 0
    conf_changes: int = 0
    snapshots_taken: int = 0
    snapshots_installed: int = 0
    rivals_detected: int = 0
    lineages_abandoned: int = 0
    malformed_frames: int = 0
    stops: dict[str, int] = field(default_factory=dict)
    """Times the group stopped on this node, by reason (``stopped.REASONS``)."""
    recoveries: int = 0
    """Times it recovered from a stop by itself."""

    def saw_hard_state(self, hard: HardState, self_id: PeerId) -> None:
        if hard.term > self.term and hard.vote == self_id:
            self.elections += 1
        self.term = max(self.term, hard.term)
