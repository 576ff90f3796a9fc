"""Groups: Raft-replicated state machines.

``node.groups.raft`` holds the consensus core (sans-I/O) and its durable storage; the group
runtime that drives it over the transport builds on these names.
"""

from node.groups.raft import (
    LeadershipPreference,
    MemoryStorage,
    RaftConfig,
    RaftError,
    RaftNode,
    SqliteStorage,
    Storage,
)

__all__ = [
    "LeadershipPreference",
    "MemoryStorage",
    "RaftConfig",
    "RaftError",
    "RaftNode",
    "SqliteStorage",
    "Storage",
]
