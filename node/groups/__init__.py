"""Groups: Raft-replicated state machines whose membership follows discovery.

``await net.groups.join(key, state_machine=...)`` returns a ``Group`` handle. The consensus
core and its storage live in ``node.groups.raft``.
"""

from node.groups.config import ConsensusConfig
from node.groups.errors import (
    CommandsNotApplied,
    Encoding,
    GroupError,
    GroupStopped,
    GroupTerminated,
    Offline,
)
from node.groups.handle import Committed, Group, LogPosition, When
from node.groups.ids import group_id, group_secret
from node.groups.pending import Executed
from node.groups.raft import (
    CorruptStorage,
    LeadershipPreference,
    Membership,
    MemoryStorage,
    RaftConfig,
    RaftError,
    RaftNode,
    Role,
    SqliteStorage,
    Storage,
)
from node.groups.service import Groups
from node.groups.state_machine import ApplyContext, StateMachine
from node.groups.wire import ALPN

__all__ = [
    "ALPN",
    "ApplyContext",
    "CommandsNotApplied",
    "Committed",
    "ConsensusConfig",
    "CorruptStorage",
    "Encoding",
    "Executed",
    "Group",
    "GroupError",
    "GroupStopped",
    "GroupTerminated",
    "Groups",
    "LeadershipPreference",
    "LogPosition",
    "Membership",
    "MemoryStorage",
    "Offline",
    "RaftConfig",
    "RaftError",
    "RaftNode",
    "Role",
    "SqliteStorage",
    "StateMachine",
    "Storage",
    "When",
    "group_id",
    "group_secret",
]
