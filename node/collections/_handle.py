"""What every collection handle shares: its replica, ``when``, ``version`` and writes.

Each kind's reader and writer live with its state machine (``map.py``: ``MapReader``,
``MapWriter``); a writer is its reader plus the write methods. Reads are synchronous and local
(possibly behind other nodes; ``when.reaches`` waits for a version). Iterating returns a copy,
so a loop that awaits in between sees a consistent view. Writes are coroutines returning the
``Version`` they were committed at, after the local replica applied them. An empty
``extend``/``remove_many`` proposes nothing and returns the current version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic

from node.collections._machine import Version
from node.collections._replica import M, Replica, When
from node.primitives.digest import StoreId


class Handle(Generic[M]):
    """A reader's view of one collection on this node (writers add the write methods)."""

    __slots__ = ("_closed", "_machine", "_release", "_replica", "when")

    def __init__(
        self, replica: Replica[M], release: Callable[[Replica[M]], Awaitable[None]]
    ) -> None:
        self._replica = replica
        self._machine: M = replica.machine
        self._release = release
        self._closed = False
        self.when: When[M] = When(replica)

    @property
    def store_id(self) -> StoreId:
        return self._replica.store_id

    @property
    def version(self) -> Version:
        """The log index of the last write applied to the local replica."""
        return self._replica.version

    def __len__(self) -> int:
        return len(self._machine)

    def is_empty(self) -> bool:
        return len(self._machine) == 0

    async def close(self) -> None:
        """Release this handle; the node leaves the group when its last handle is closed."""
        if not self._closed:
            self._closed = True
            await self._release(self._replica)

    async def _write(self, command: Any) -> Version:
        """Propose ``command``; return once it is committed and applied locally."""
        self._replica.check_open()
        checked = self._machine.check(command)
        group = await self._replica.group()
        executed = await group.execute(checked)
        return Version(executed.index)

    async def _write_batch(
        self, items: Iterable[Any], command: Callable[[list[Any]], Any]
    ) -> Version:
        """Propose ``command(batch)``; an empty batch writes nothing and keeps the version."""
        batch = list(items)
        if not batch:
            return self.version
        return await self._write(command(batch))

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}({self.store_id.short()}, len={len(self)}, version={self.version})"
