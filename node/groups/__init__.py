"""Groups: Raft-replicated state machines whose membership follows discovery.

``await net.groups.join(key, state_machine=...)`` returns a ``Group`` handle. The consensus
core and its storage live in ``node.groups.raft``.

The sans-I/O parts load eagerly; the asyncio shell (``Groups``, ``Group``, ``Executed``) and
``SqliteStorage`` resolve on first use, so importing a core does not start asyncio.
"""

import typing

from node._lazy import lazy as _lazy
from node.groups.config import ConsensusConfig
from node.groups.errors import (
    CommandsNotApplied,
    Encoding,
    GroupError,
    GroupStopped,
    GroupTerminated,
    Offline,
)
from node.groups.ids import group_id, group_secret
from node.groups.raft.config import LeadershipPreference, RaftConfig
from node.groups.raft.core import RaftNode
from node.groups.raft.errors import CorruptStorage, RaftError
from node.groups.raft.ready import Role
from node.groups.raft.records import Membership
from node.groups.raft.storage import MemoryStorage, Storage
from node.groups.state_machine import ApplyContext, StateMachine
from node.groups.wire import ALPN

if typing.TYPE_CHECKING:
    from node.groups.handle import Committed, Group, LogPosition, When
    from node.groups.pending import Executed
    from node.groups.raft.sqlite_storage import SqliteStorage
    from node.groups.service import Groups
else:
    __getattr__, __dir__ = _lazy(
        __name__,
        {
            "node.groups.handle": ("Committed", "Group", "LogPosition", "When"),
            "node.groups.pending": ("Executed",),
            "node.groups.raft.sqlite_storage": ("SqliteStorage",),
            "node.groups.service": ("Groups",),
        },
    )

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
