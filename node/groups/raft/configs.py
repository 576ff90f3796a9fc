"""Configurations in the log: the first one (``bootstrap``) and the history a node tracks.

A configuration is in effect as soon as its entry is appended (thesis 4.1), so a node's
configuration is the latest one in its log, and reverts when that entry is truncated.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.errors import DecodeError
from node.groups.raft.errors import CorruptStorage, InvalidConfChange, UsageError
from node.groups.raft.log import RaftLog
from node.groups.raft.messages import decode_membership
from node.groups.raft.records import Entry, EntryKind, HardState, Membership, SnapshotMeta
from node.groups.raft.storage import Storage
from node.primitives.codec import encode


def bootstrap(storage: Storage, membership: Membership) -> None:
    """Write the first configuration into an empty log, as entry 1 of term 1.

    Either one node bootstraps and the others start empty (they follow whoever leads), or
    every initial member bootstraps with the same membership; both are consistent logs.
    """
    hard, meta = storage.initial_state()
    if storage.last_index() != 0 or meta.index != 0 or hard.term != 0:
        raise UsageError("bootstrap needs an empty log")
    if not membership.voters:
        raise InvalidConfChange("the first configuration needs at least one voter")
    storage.save(HardState(term=1), [Entry(1, 1, EntryKind.CONFIG, encode(membership))], None)


class ConfigHistory:
    """The snapshot's configuration, then one per CONFIG entry of the log, by index."""

    __slots__ = ("_configs",)

    def __init__(self, meta: SnapshotMeta) -> None:
        self._configs: list[tuple[int, Membership]] = [(meta.index, meta.membership)]

    @classmethod
    def load(cls, meta: SnapshotMeta, log: RaftLog) -> ConfigHistory:
        """The history of a log being reopened; ``CorruptStorage`` for an invalid entry."""
        history = cls(meta)
        lo, hi = log.first_index(), log.last_index() + 1
        while lo < hi:
            chunk = log.entries(lo, hi, 4 << 20)
            try:
                history.append(chunk)
            except DecodeError as exc:
                raise CorruptStorage(f"a configuration entry is invalid: {exc}") from None
            lo = chunk[-1].index + 1
        return history

    @property
    def latest(self) -> Membership:
        return self._configs[-1][1]

    def at(self, index: int) -> Membership:
        """The configuration in effect at ``index``."""
        found = self._configs[0][1]
        for at, membership in self._configs:
            if at > index:
                break
            found = membership
        return found

    def truncate(self, first: int) -> bool:
        """Forget configurations of entries from ``first`` on; True if any was dropped."""
        dropped = False
        while len(self._configs) > 1 and self._configs[-1][0] >= first:
            self._configs.pop()
            dropped = True
        return dropped

    def append(self, entries: Sequence[Entry]) -> bool:
        """Record the configuration entries among ``entries``; True if there was one."""
        added = False
        for entry in entries:
            if entry.kind == EntryKind.CONFIG:
                self._configs.append((entry.index, decode_membership(entry.data)))
                added = True
        return added
