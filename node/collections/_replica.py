"""A node's replica of one collection: its machine, the group that feeds it, and ``when``.

Several handles of one store on one node (a writer and readers) share one replica: a node is
one member of a group. The replica joins its group in the background so that opening a
collection is synchronous; writes and ``when.online()`` wait for the join, reads never do.

The group runtime is reached through the small protocols below (``net.groups.join`` returns a
``Group``); this module never sees Raft.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from node._tasks import TaskScope
from node.collections._machine import Change, CollectionMachine, Version
from node.collections.errors import CollectionClosed
from node.groups.config import ConsensusConfig
from node.groups.pending import Executed
from node.groups.state_machine import StateMachine
from node.primitives.digest import Digest, StoreId
from node.tickets.validation import TicketValidator

M = TypeVar("M", bound=CollectionMachine[Any])


class GroupWhen(Protocol):
    async def online(self) -> None: ...

    async def offline(self) -> None: ...


class Group(Protocol):
    """What a collection needs of a joined group."""

    @property
    def when(self) -> GroupWhen: ...

    async def execute(self, command: Any) -> Executed: ...

    async def close(self) -> None: ...


class Groups(Protocol):
    """What a collection needs of ``net.groups``."""

    async def join(
        self,
        key: Digest,
        *,
        state_machine: StateMachine,
        bootstrap_expect: int = ...,
        max_voters: int = ...,
        consensus: ConsensusConfig | None = ...,
        require_ticket: tuple[TicketValidator, ...] | None = ...,
    ) -> Group: ...


@dataclass(frozen=True, slots=True)
class GroupOptions:
    """How a collection's group runs (``net.groups.join`` options).

    - ``consensus``: timing of the group (the groups default if None); its agreed fields
      feed the group id, so every member of a collection must use the same.
    - ``bootstrap_expect``: writers that must be discovered before the first configuration
      is formed (1 lets a lone writer start; use the planned number of writers in
      production so that concurrent first starts cannot form rival groups).
    - ``max_voters``: writers beyond this many are kept as learners.
    """

    consensus: ConsensusConfig | None = None
    bootstrap_expect: int = 1
    max_voters: int = 5


class Signal:
    """A broadcast wake-up: every task waiting when ``notify`` runs is woken."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Replica(Generic[M]):
    """One collection machine on this node and the group that keeps it in step."""

    def __init__(
        self,
        machine: M,
        *,
        reader: bool,
        validators: tuple[TicketValidator, ...],
        options: GroupOptions,
        groups: Groups,
        tasks: TaskScope,
        on_change: Callable[[Replica[M], Change], None],
    ) -> None:
        self.machine = machine
        self.reader = reader
        self.validators = validators
        self.options = options
        self.handles = 0
        self.closed = False
        self.changed = Signal()
        self._on_change = on_change
        machine.add_listener(self._changed)
        self._joining: asyncio.Task[Group] = tasks.spawn(
            groups.join(
                machine.store_id,
                state_machine=machine,
                bootstrap_expect=options.bootstrap_expect,
                max_voters=options.max_voters,
                consensus=options.consensus,
                require_ticket=validators or None,
            ),
            name=f"{machine.kind}/{machine.store_id.short()}",
        )

    @property
    def store_id(self) -> StoreId:
        return self.machine.store_id

    @property
    def version(self) -> Version:
        return Version(self.machine.version)

    async def group(self) -> Group:
        """The joined group (waits for the join; raises its error if it failed)."""
        self.check_open()
        # shielded: a caller that gives up must not cancel the join for the other handles
        return await asyncio.shield(self._joining)

    def check_open(self) -> None:
        if self.closed:
            raise CollectionClosed(
                f"{self.machine.kind} {self.store_id.short()} is closed on this node"
            )

    def _changed(self, change: Change) -> None:
        self._on_change(self, change)
        self.changed.notify()

    async def close(self) -> None:
        """Leave the group and wake every waiter (they raise ``CollectionClosed``)."""
        if self.closed:
            return
        self.closed = True
        self.machine.remove_listener(self._changed)
        self.changed.notify()
        if not self._joining.done():
            self._joining.cancel()
            await asyncio.wait([self._joining])
        if self._joining.cancelled() or self._joining.exception() is not None:
            return  # the join never produced a group: nothing to leave
        await self._joining.result().close()


class When(Generic[M]):
    """Conditions of one collection on this node.

    - ``online()`` / ``offline()``: the group can (cannot) commit writes right now.
    - ``updated()``: the next change of the local replica (a command applied, a snapshot
      installed).
    - ``reaches(version)``: the local replica has applied every write up to ``version``; with
      the version a write returned (on any node), reads here then see that write.
    """

    __slots__ = ("_replica",)

    def __init__(self, replica: Replica[M]) -> None:
        self._replica = replica

    async def online(self) -> None:
        group = await self._replica.group()
        await group.when.online()

    async def offline(self) -> None:
        group = await self._replica.group()
        await group.when.offline()

    async def updated(self) -> None:
        self._replica.check_open()
        await self._replica.changed.wait()
        self._replica.check_open()

    async def reaches(self, version: Version) -> None:
        while self._replica.machine.version < version.index:
            self._replica.check_open()
            await self._replica.changed.wait()
