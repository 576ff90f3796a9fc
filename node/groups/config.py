"""How a group runs: timing and limits (``ConsensusConfig``).

Fields that every member must share feed the group id (see ``ConsensusConfig.digest``): two
nodes whose agreed fields differ simply form different groups, so a member can never run with
timing that breaks its peers' assumptions (a heartbeat slower than their election timeout).
The other fields are local tuning and may differ between members.
"""

from __future__ import annotations

import msgspec

from node.errors import ConfigError
from node.groups.raft.config import LeadershipPreference, RaftConfig
from node.primitives.codec import encode
from node.primitives.digest import Digest

_DIGEST_LABEL = "mosaik.groups.consensus.v1"


class ConsensusConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Timing and limits of one group; times are in seconds.

    Agreed by every member (part of the group id):

    - ``heartbeat_interval``: the Raft clock tick; the leader sends heartbeats every tick.
    - ``election_ticks``: a follower that hears no leader for a random time in
      [``election_ticks``, 2 * ``election_ticks``) ticks campaigns (times the reluctance factor).
    - ``pre_vote``, ``check_quorum``: Raft's protections against disruptive candidates and
      partitioned leaders.

    Local to each member:

    - ``bootstrap_delay``: how long a new, empty member looks for peers before it may form the
      first configuration (only the lowest peer id among ``bootstrap_expect`` members does).
    - ``member_timeout``: a member gone from the catalog, or silent, this long is removed.
    - ``snapshot_every``: compact the log after this many applied entries.
    - ``forward_timeout``: how long a command may wait for a leader to take it.
    - ``query_timeout``: how long a strong query may wait for the leader's confirmation.
    - ``max_entries_per_message``, ``max_bytes_per_message``, ``max_inflight``: replication
      batching and pipelining (also the catch-up batch size).
    """

    heartbeat_interval: float = 0.1
    election_ticks: int = 8
    pre_vote: bool = True
    check_quorum: bool = True
    bootstrap_delay: float = 1.0
    member_timeout: float = 30.0
    snapshot_every: int = 10_000
    forward_timeout: float = 2.0
    query_timeout: float = 2.0
    max_entries_per_message: int = 256
    max_bytes_per_message: int = 1 << 20
    max_inflight: int = 64

    def __post_init__(self) -> None:
        positive = ("heartbeat_interval", "member_timeout", "forward_timeout", "query_timeout")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"consensus {name} must be positive, got {getattr(self, name)}")
        if self.bootstrap_delay < 0:
            raise ConfigError("consensus bootstrap_delay must not be negative")
        if self.election_ticks < 2:
            raise ConfigError(
                f"consensus election_ticks must be at least 2, got {self.election_ticks}"
            )
        for name in ("snapshot_every", "max_entries_per_message", "max_bytes_per_message"):
            if getattr(self, name) < 1:
                raise ConfigError(f"consensus {name} must be at least 1, got {getattr(self, name)}")
        if self.max_inflight < 1:
            raise ConfigError(f"consensus max_inflight must be at least 1, got {self.max_inflight}")

    @property
    def election_timeout(self) -> float:
        """The shortest time without a leader before a follower campaigns, in seconds."""
        return self.heartbeat_interval * self.election_ticks

    def digest(self) -> Digest:
        """blake3 of the agreed fields: the encoding of the tuple ``("mosaik.groups.consensus.v1",
        heartbeat interval in whole milliseconds, election_ticks, pre_vote, check_quorum)``."""
        agreed = (
            _DIGEST_LABEL,
            round(self.heartbeat_interval * 1000),
            self.election_ticks,
            self.pre_vote,
            self.check_quorum,
        )
        return Digest.hash(encode(agreed))

    def raft_config(self, preference: LeadershipPreference) -> RaftConfig:
        return RaftConfig(
            election_ticks=self.election_ticks,
            heartbeat_ticks=1,
            max_entries_per_message=self.max_entries_per_message,
            max_bytes_per_message=self.max_bytes_per_message,
            max_inflight=self.max_inflight,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            preference=preference,
        )
