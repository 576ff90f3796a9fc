"""The replicated state machine a group runs: what every member applies in log order.

A state machine is deterministic: the same commands applied in the same order from the same
snapshot give the same state and results on every member. Commands and queries are msgspec
types (Structs or tagged unions); the group encodes commands once, at the proposer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from node.groups.raft.config import LeadershipPreference
from node.primitives.digest import Digest


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """Where a command sits in the log when it is applied."""

    index: int
    term: int


@runtime_checkable
class StateMachine(Protocol):
    """What ``net.groups.join(key, state_machine=...)`` runs.

    - ``signature()`` names the machine and its command/query types; it feeds the group id, so
      members running incompatible machines never join the same group.
    - ``command_type`` / ``query_type`` are the msgspec types commands and queries decode to.
    - ``apply`` must be deterministic and must not raise for a valid command: an exception is a
      bug and stops the member (the log stays intact, the member can be fixed and restarted).
    - ``query`` reads the state; it never changes it.
    - ``snapshot`` / ``restore`` capture and reinstate the whole state as bytes, for log
      compaction and for members that fell behind the compacted log.
    - ``leadership_preference`` (optional attribute) says how eager this member is to lead.
    """

    command_type: Any
    query_type: Any

    def signature(self) -> Digest: ...

    def apply(self, command: Any, ctx: ApplyContext) -> Any: ...

    def query(self, query: Any) -> Any: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


def leadership_preference(machine: StateMachine) -> LeadershipPreference:
    preference = getattr(machine, "leadership_preference", None)
    return preference if isinstance(preference, LeadershipPreference) else LeadershipPreference()
