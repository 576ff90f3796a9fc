"""Tuning of the Raft core (in logical ticks) and the node's leadership preference."""

from __future__ import annotations

import enum

import msgspec

from node.errors import ConfigError


class PreferenceKind(enum.Enum):
    NORMAL = "normal"
    RELUCTANT = "reluctant"
    OBSERVER = "observer"


class LeadershipPreference(msgspec.Struct, frozen=True):
    """How eager this node is to lead.

    - ``normal()``: campaigns after a randomized election timeout.
    - ``reluctant(factor)``: waits ``factor`` times longer before campaigning, so nodes with a
      normal preference usually win.
    - ``observer()``: never campaigns and refuses leadership transfers. Unlike the seed's
      observers it still votes when it is a voter: a voter that abstains counts against every
      quorum and only costs availability. Nodes meant to be passive should be learners (the
      runtime adds observers as learners), which have no vote.
    """

    kind: PreferenceKind = PreferenceKind.NORMAL
    factor: int = 1

    @classmethod
    def normal(cls) -> LeadershipPreference:
        return cls()

    @classmethod
    def reluctant(cls, factor: int = 3) -> LeadershipPreference:
        if factor < 1:
            raise ConfigError(f"reluctance factor must be at least 1, got {factor}")
        return cls(PreferenceKind.RELUCTANT, factor)

    @classmethod
    def observer(cls) -> LeadershipPreference:
        return cls(PreferenceKind.OBSERVER)

    @property
    def campaigns(self) -> bool:
        return self.kind is not PreferenceKind.OBSERVER


class RaftConfig(msgspec.Struct, frozen=True):
    """Parameters of one Raft node. Times are in ticks of the shell's clock.

    A follower campaigns after a random timeout in [election_ticks, 2 * election_ticks)
    (times the reluctance factor); the leader sends heartbeats every ``heartbeat_ticks`` and,
    with ``check_quorum``, steps down when a majority was silent for ``election_ticks``.
    """

    election_ticks: int = 10
    heartbeat_ticks: int = 1
    max_entries_per_message: int = 256
    max_bytes_per_message: int = 1 << 20
    max_inflight: int = 64
    max_apply_bytes: int = 4 << 20
    pre_vote: bool = True
    check_quorum: bool = True
    preference: LeadershipPreference = LeadershipPreference()

    def __post_init__(self) -> None:
        if self.heartbeat_ticks < 1:
            raise ConfigError(f"heartbeat_ticks must be at least 1, got {self.heartbeat_ticks}")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ConfigError(
                f"election_ticks ({self.election_ticks}) must exceed heartbeat_ticks "
                f"({self.heartbeat_ticks})"
            )
        for name in (
            "max_entries_per_message",
            "max_bytes_per_message",
            "max_inflight",
            "max_apply_bytes",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
