"""``net.collections``: open replicated collections by store name.

Every collection is its own group, keyed by its ``StoreId``; its state machine's signature
(kind, store id, type parameters, options) feeds the group id. ``reader=False`` (the default)
opens a writer, a voting member; ``reader=True`` opens a reader, which the group keeps as a
learner: it replicates and serves reads locally but never votes or leads, so a group of only
readers never comes online.

Handles of one store on one node share one replica. A reader opened where a writer is open
reads the writer's replica; a writer cannot be opened while the store is open as a reader on
this node (``StoreConflict``): close the readers first.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeVar, overload

from node._tasks import TaskScope
from node.collections._machine import Change, CollectionMachine
from node.collections._replica import GroupOptions, Groups, Replica
from node.collections.cell import (
    CellMachine,
    CellReader,
    CellWriter,
    OnceMachine,
    OnceReader,
    OnceWriter,
)
from node.collections.errors import CollectionClosed, StoreConflict
from node.collections.map import MapMachine, MapReader, MapWriter
from node.collections.metrics import CollectionMetrics
from node.collections.pqueue import PriorityQueueMachine, PriorityQueueReader, PriorityQueueWriter
from node.collections.set import SetMachine, SetReader, SetWriter
from node.collections.vec import VecMachine, VecReader, VecWriter
from node.metrics import Metrics
from node.primitives.digest import Digest, StoreId
from node.tickets import RequireTicket, TicketValidator, as_validators

P = TypeVar("P")
K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
M = TypeVar("M", bound=CollectionMachine[Any])


class CollectionHost(Protocol):
    """What ``Collections`` needs of the node (``Network`` provides it)."""

    @property
    def groups(self) -> Groups: ...

    @property
    def metrics(self) -> Metrics: ...


class Collections:
    """The node's replicated collections (``net.collections``)."""

    def __init__(self, net: CollectionHost, *, group: GroupOptions | None = None) -> None:
        """``group``: the default group options of every collection opened here (each opener
        may override them)."""
        self._net = net
        self._options = group or GroupOptions()
        self._metrics = CollectionMetrics(net.metrics)
        self._tasks = TaskScope("collections")
        self._replicas: dict[Digest, Replica[Any]] = {}
        self._closed = False

    # -- opening ------------------------------------------------------------------------------

    @overload
    def map(
        self,
        store: str | StoreId,
        *,
        key: type[K],
        value: type[V],
        reader: Literal[False] = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> MapWriter[K, V]: ...
    @overload
    def map(
        self,
        store: str | StoreId,
        *,
        key: type[K],
        value: type[V],
        reader: Literal[True],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> MapReader[K, V]: ...
    def map(
        self,
        store: str | StoreId,
        *,
        key: type[K],
        value: type[V],
        reader: bool = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> MapReader[K, V]:
        """A replicated map from ``key`` to ``value`` (msgspec-encodable types)."""
        machine: MapMachine[K, V] = MapMachine(_store(store), key, value, writer=not reader)
        replica = self._open(machine, reader, require_ticket, group)
        return (MapReader if reader else MapWriter)(replica, self._release)

    @overload
    def vec(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        reader: Literal[False] = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> VecWriter[T]: ...
    @overload
    def vec(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        reader: Literal[True],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> VecReader[T]: ...
    def vec(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        reader: bool = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> VecReader[T]:
        """A replicated vector of ``item``."""
        machine: VecMachine[T] = VecMachine(_store(store), item, writer=not reader)
        replica = self._open(machine, reader, require_ticket, group)
        return (VecReader if reader else VecWriter)(replica, self._release)

    @overload
    def set(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        reader: Literal[False] = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> SetWriter[T]: ...
    @overload
    def set(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        reader: Literal[True],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> SetReader[T]: ...
    def set(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        reader: bool = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> SetReader[T]:
        """A replicated set of ``item`` (a hashable type)."""
        machine: SetMachine[T] = SetMachine(_store(store), item, writer=not reader)
        replica = self._open(machine, reader, require_ticket, group)
        return (SetReader if reader else SetWriter)(replica, self._release)

    @overload
    def cell(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        reader: Literal[False] = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> CellWriter[T]: ...
    @overload
    def cell(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        reader: Literal[True],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> CellReader[T]: ...
    def cell(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        reader: bool = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> CellReader[T]:
        """A replicated single ``value``: every write replaces it."""
        machine: CellMachine[T] = CellMachine(_store(store), value, writer=not reader)
        replica = self._open(machine, reader, require_ticket, group)
        return (CellReader if reader else CellWriter)(replica, self._release)

    @overload
    def once(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        reader: Literal[False] = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> OnceWriter[T]: ...
    @overload
    def once(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        reader: Literal[True],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> OnceReader[T]: ...
    def once(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        reader: bool = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> OnceReader[T]:
        """A replicated write-once ``value``: the first committed write stays."""
        machine: OnceMachine[T] = OnceMachine(_store(store), value, writer=not reader)
        replica = self._open(machine, reader, require_ticket, group)
        return (OnceReader if reader else OnceWriter)(replica, self._release)

    @overload
    def priority_queue(
        self,
        store: str | StoreId,
        *,
        priority: type[P],
        key: type[K],
        value: type[V],
        capacity: int | None = None,
        reader: Literal[False] = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> PriorityQueueWriter[P, K, V]: ...
    @overload
    def priority_queue(
        self,
        store: str | StoreId,
        *,
        priority: type[P],
        key: type[K],
        value: type[V],
        capacity: int | None = None,
        reader: Literal[True],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> PriorityQueueReader[P, K, V]: ...
    def priority_queue(
        self,
        store: str | StoreId,
        *,
        priority: type[P],
        key: type[K],
        value: type[V],
        capacity: int | None = None,
        reader: bool = False,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> PriorityQueueReader[P, K, V]:
        """A replicated double-ended priority queue of ``(priority, key, value)`` entries,
        bounded to ``capacity`` entries if given (part of the group's identity)."""
        machine: PriorityQueueMachine[P, K, V] = PriorityQueueMachine(
            _store(store), priority, key, value, capacity=capacity, writer=not reader
        )
        replica = self._open(machine, reader, require_ticket, group)
        return (PriorityQueueReader if reader else PriorityQueueWriter)(replica, self._release)

    # -- replicas -----------------------------------------------------------------------------

    def _open(
        self,
        machine: M,
        reader: bool,
        require_ticket: RequireTicket,
        group: GroupOptions | None,
    ) -> Replica[M]:
        if self._closed:
            raise CollectionClosed("the node's collections are closed")
        validators = as_validators(require_ticket)
        options = group or self._options
        signature = machine.signature()
        replica: Replica[M] | None = self._replicas.get(signature)
        name = f"{machine.kind} {machine.store_id.short()}"
        if replica is None:
            replica = Replica(
                machine,
                reader=reader,
                validators=validators,
                options=options,
                groups=self._net.groups,
                tasks=self._tasks,
                on_change=self._changed,
            )
            self._replicas[signature] = replica
            self._metrics.track(machine.kind, machine.store_id.short(), machine.__len__)
        elif replica.reader and not reader:
            raise StoreConflict(
                f"{name} is open as a reader on this node: close its readers to open a writer"
            )
        elif _signatures(replica.validators) != _signatures(validators):
            raise StoreConflict(f"{name} is open on this node with other ticket validators")
        elif replica.options != options:
            raise StoreConflict(f"{name} is open on this node with other group options")
        replica.handles += 1
        return replica

    def _changed(self, replica: Replica[Any], change: Change) -> None:
        if change is Change.RESTORED:
            self._metrics.synced(replica.machine.kind, replica.store_id.short())

    async def _release(self, replica: Replica[Any]) -> None:
        replica.handles -= 1
        if replica.handles == 0:
            await self._forget(replica)

    async def _forget(self, replica: Replica[Any]) -> None:
        signature = replica.machine.signature()
        if self._replicas.get(signature) is replica:
            del self._replicas[signature]
            self._metrics.untrack(replica.machine.kind, replica.store_id.short())
        await replica.close()

    def statistics(self) -> list[dict[str, Any]]:
        """One row per open collection: kind, store, role, size and version."""
        return [
            {
                "kind": r.machine.kind,
                "store": r.store_id.hex(),
                "role": "reader" if r.reader else "writer",
                "size": len(r.machine),
                "version": r.machine.version,
                "handles": r.handles,
            }
            for r in self._replicas.values()
        ]

    async def close(self) -> None:
        """Close every collection: the node leaves their groups; handles raise
        ``CollectionClosed`` from then on."""
        if self._closed:
            return
        self._closed = True
        for replica in list(self._replicas.values()):
            await self._forget(replica)
        await self._tasks.aclose()


def _store(store: str | StoreId) -> StoreId:
    return Digest.from_name(store)


def _signatures(validators: tuple[TicketValidator, ...]) -> list[Digest]:
    return sorted(v.signature() for v in validators)
