"""What every collection state machine shares: version, signature, snapshots, listeners.

A collection machine is a sans-I/O core: the group runtime hands it committed commands in log
order (``apply``) and asks it for snapshots; handles read its state synchronously. Nothing in
here touches the network, a clock or randomness.

**Version.** A replica's version is the log index of the last collection command it applied
(0 before the first). Writes return the index their command was committed at, so
``version >= v`` on any replica means that write is visible there. The version travels inside
snapshots, so a replica restored from a snapshot taken at index ``i`` reports the index of the
last command at or before ``i``.

**Determinism.** Two replicas that applied the same log (from empty, or from a snapshot of
that log) hold equal state, iterate in the same order and produce byte-identical snapshots.
Each machine documents its iteration order; none depends on ``hash()`` (randomized per
process for ``str``/``bytes``).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from node.collections._types import type_name
from node.collections.errors import InvalidValue
from node.errors import DecodeError
from node.groups.raft.config import LeadershipPreference
from node.groups.state_machine import ApplyContext
from node.primitives.codec import Decoder, encode
from node.primitives.digest import Digest, StoreId

S = TypeVar("S", bound=msgspec.Struct)


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A position in a collection's history: the log index a write was committed at."""

    index: int

    def __str__(self) -> str:
        return str(self.index)


class Change(enum.Enum):
    """What just happened to a machine's state (told to its listeners)."""

    APPLIED = "applied"
    RESTORED = "restored"


class Size(msgspec.Struct, frozen=True, tag="size"):
    """The one query collections answer through the group: the number of elements."""


class CollectionMachine(abc.ABC, Generic[S]):
    """Base of the six collection machines; ``S`` is the machine's snapshot Struct."""

    kind: ClassVar[str]
    query_type: Any = Size
    command_type: Any
    snapshot_type: Any

    def __init__(
        self,
        store_id: StoreId,
        params: Sequence[Any],
        *,
        writer: bool,
        options: Sequence[str] = (),
    ) -> None:
        self.store_id = store_id
        self.version = 0
        self.leadership_preference = (
            LeadershipPreference.normal() if writer else LeadershipPreference.observer()
        )
        self._param_names = tuple(type_name(p) for p in params)
        self._options = tuple(options)
        self._listeners: list[Callable[[Change], None]] = []
        self._command_decoder: Decoder[Any] = Decoder(self.command_type)
        self._snapshot_decoder: Decoder[S] = Decoder(self.snapshot_type)

    # -- identity ---------------------------------------------------------------------------

    def signature(self) -> Digest:
        """``"mosaik_collections_<kind>"`` derived with the store id, then each type name (and
        options that change behaviour, such as a priority queue's capacity)."""
        digest = Digest.from_name(f"mosaik_collections_{self.kind}").derive(self.store_id)
        for part in (*self._param_names, *self._options):
            digest = digest.derive(part)
        return digest

    # -- the StateMachine protocol ------------------------------------------------------------

    def apply(self, command: Any, ctx: ApplyContext) -> None:
        self._apply(command)
        self.version = ctx.index
        self._notify(Change.APPLIED)

    def query(self, query: Any) -> int:
        return len(self)

    def snapshot(self) -> bytes:
        return encode(self._snapshot())

    def restore(self, data: bytes) -> None:
        snapshot = self._snapshot_decoder.decode(data)
        self._restore(snapshot)
        self._notify(Change.RESTORED)

    # -- for handles --------------------------------------------------------------------------

    def check(self, command: Any) -> Any:
        """``command`` as every replica will decode it, or ``InvalidValue`` if it does not
        match the declared types (it would fail to apply everywhere, so it is never sent)."""
        try:
            return self._command_decoder.decode(encode(command))
        except (
            DecodeError,
            TypeError,
            NotImplementedError,
            OverflowError,
            msgspec.EncodeError,
        ) as exc:
            raise InvalidValue(
                f"{self.kind} {self.store_id.short()} ({', '.join(self._param_names)}): {exc}"
            ) from None

    def add_listener(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Change], None]) -> None:
        self._listeners.remove(listener)

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    # -- per collection -----------------------------------------------------------------------

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def _apply(self, command: Any) -> None: ...

    @abc.abstractmethod
    def _snapshot(self) -> S: ...

    @abc.abstractmethod
    def _restore(self, snapshot: S) -> None: ...
