"""``net.collections``: open replicated collections by store name.

Every collection is its own group, keyed by its ``StoreId``; its state machine's signature
(kind, store id, type parameters, options) feeds the group id. Each kind opens two ways:
``map(...)`` opens a writer, a voting member; ``map_reader(...)`` opens a reader, which the
group keeps as a learner: it replicates and serves reads locally but never votes or leads, so
a group of only readers never comes online. Likewise ``vec``/``vec_reader``,
``set``/``set_reader``, ``cell``/``cell_reader``, ``once``/``once_reader`` and
``priority_queue``/``priority_queue_reader``. A reader takes the same type parameters (and
capacity) as the writers: they are part of the group's identity.

Handles of one store on one node share one replica. A reader opened where a writer is open
reads the writer's replica; a writer cannot be opened while the store is open as a reader on
this node (``StoreConflict``): close the readers first.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

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
    # Each kind has a writer factory (``map``) and a reader factory (``map_reader``).

    def map(
        self,
        store: str | StoreId,
        *,
        key: type[K],
        value: type[V],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> MapWriter[K, V]:
        """A replicated map from ``key`` to ``value`` (msgspec-encodable types) this node
        writes."""
        machine: MapMachine[K, V] = MapMachine(_store(store), key, value, writer=True)
        return MapWriter(self._open(machine, False, require_ticket, group), self._release)

    def map_reader(
        self,
        store: str | StoreId,
        *,
        key: type[K],
        value: type[V],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> MapReader[K, V]:
        """A replicated map from ``key`` to ``value`` this node only reads."""
        machine: MapMachine[K, V] = MapMachine(_store(store), key, value, writer=False)
        return MapReader(self._open(machine, True, require_ticket, group), self._release)

    def vec(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> VecWriter[T]:
        """A replicated vector of ``item`` this node writes."""
        machine: VecMachine[T] = VecMachine(_store(store), item, writer=True)
        return VecWriter(self._open(machine, False, require_ticket, group), self._release)

    def vec_reader(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> VecReader[T]:
        """A replicated vector of ``item`` this node only reads."""
        machine: VecMachine[T] = VecMachine(_store(store), item, writer=False)
        return VecReader(self._open(machine, True, require_ticket, group), self._release)

    def set(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> SetWriter[T]:
        """A replicated set of ``item`` (a hashable type) this node writes."""
        machine: SetMachine[T] = SetMachine(_store(store), item, writer=True)
        return SetWriter(self._open(machine, False, require_ticket, group), self._release)

    def set_reader(
        self,
        store: str | StoreId,
        *,
        item: type[T],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> SetReader[T]:
        """A replicated set of ``item`` this node only reads."""
        machine: SetMachine[T] = SetMachine(_store(store), item, writer=False)
        return SetReader(self._open(machine, True, require_ticket, group), self._release)

    def cell(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> CellWriter[T]:
        """A replicated single ``value`` this node writes: every write replaces it."""
        machine: CellMachine[T] = CellMachine(_store(store), value, writer=True)
        return CellWriter(self._open(machine, False, require_ticket, group), self._release)

    def cell_reader(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> CellReader[T]:
        """A replicated single ``value`` this node only reads."""
        machine: CellMachine[T] = CellMachine(_store(store), value, writer=False)
        return CellReader(self._open(machine, True, require_ticket, group), self._release)

    def once(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> OnceWriter[T]:
        """A replicated write-once ``value`` this node writes: the first committed write
        stays."""
        machine: OnceMachine[T] = OnceMachine(_store(store), value, writer=True)
        return OnceWriter(self._open(machine, False, require_ticket, group), self._release)

    def once_reader(
        self,
        store: str | StoreId,
        *,
        value: type[T],
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> OnceReader[T]:
        """A replicated write-once ``value`` this node only reads."""
        machine: OnceMachine[T] = OnceMachine(_store(store), value, writer=False)
        return OnceReader(self._open(machine, True, require_ticket, group), self._release)

    def priority_queue(
        self,
        store: str | StoreId,
        *,
        priority: type[P],
        key: type[K],
        value: type[V],
        capacity: int | None = None,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> PriorityQueueWriter[P, K, V]:
        """A replicated double-ended priority queue of ``(priority, key, value)`` entries this
        node writes, bounded to ``capacity`` entries if given (part of the group's
        identity)."""
        machine: PriorityQueueMachine[P, K, V] = PriorityQueueMachine(
            _store(store), priority, key, value, capacity=capacity, writer=True
        )
        replica = self._open(machine, False, require_ticket, group)
        return PriorityQueueWriter(replica, self._release)

    def priority_queue_reader(
        self,
        store: str | StoreId,
        *,
        priority: type[P],
        key: type[K],
        value: type[V],
        capacity: int | None = None,
        require_ticket: RequireTicket = None,
        group: GroupOptions | None = None,
    ) -> PriorityQueueReader[P, K, V]:
        """A replicated double-ended priority queue this node only reads (``capacity`` must
        match the writers')."""
        machine: PriorityQueueMachine[P, K, V] = PriorityQueueMachine(
            _store(store), priority, key, value, capacity=capacity, writer=False
        )
        replica = self._open(machine, True, require_ticket, group)
        return PriorityQueueReader(replica, self._release)

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
