"""Ticket admission for one gated object (a stream, a group, a collection): sans-I/O.

The gate holds the object's validators and an ``ExpiryTimer`` of admitted peers. Its shell
calls ``admit`` when a peer asks in, ``entry_changed`` whenever discovery delivers a newer
entry of an admitted peer (so a removed ticket revokes at once), and ``expired`` when
``next_deadline()`` passes. Streams drop what ``expired`` returns; groups may call ``admit``
again with the peer's current entry to re-check the bond. No clock, no tasks.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from node.primitives.digest import Digest
from node.tickets.errors import TicketsRejected
from node.tickets.timer import ExpiryTimer
from node.tickets.validation import Expiry, TicketSubject, TicketValidator, validate_all

K = TypeVar("K", bound=Hashable)


class TicketGate(Generic[K]):
    """Admits peers whose tickets pass every validator, until the earliest expiry."""

    __slots__ = ("_timer", "_validators")

    def __init__(self, validators: Iterable[TicketValidator] = ()) -> None:
        self._validators = tuple(validators)
        self._timer: ExpiryTimer[K] = ExpiryTimer()

    @property
    def validators(self) -> tuple[TicketValidator, ...]:
        return self._validators

    def signatures(self) -> tuple[Digest, ...]:
        """The validators' signatures, in order: what a group id derives from."""
        return tuple(v.signature() for v in self._validators)

    def admit(self, key: K, peer: TicketSubject, now: float) -> Expiry:
        """Validate ``peer`` and (re)schedule ``key``; on rejection ``key`` is unscheduled
        and ``TicketsRejected`` propagates with every reason."""
        try:
            expiry = validate_all(self._validators, peer, now)
        except TicketsRejected:
            self._timer.cancel(key)
            raise
        self._timer.schedule(key, expiry)
        return expiry

    def entry_changed(self, key: K, peer: TicketSubject, now: float) -> TicketsRejected | None:
        """Re-validate an admitted peer's new entry; the rejection if access is revoked."""
        try:
            self.admit(key, peer, now)
        except TicketsRejected as exc:
            return exc
        return None

    def release(self, key: K) -> None:
        """``key`` left for another reason (unsubscribed, disconnected)."""
        self._timer.cancel(key)

    def next_deadline(self) -> float | None:
        return self._timer.next_deadline()

    def expired(self, now: float) -> list[K]:
        """Admissions whose tickets lapsed by ``now``, earliest first; they are released."""
        return self._timer.due(now)

    def __contains__(self, key: object) -> bool:
        return key in self._timer

    def __len__(self) -> int:
        return len(self._timer)
