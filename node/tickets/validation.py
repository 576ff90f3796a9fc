"""The validator protocol, expiries, and the rule that combines validators.

A validator checks tickets of one class (``class_id``) against the peer that carries them and
says until when its verdict holds. An object gated by several validators (a stream, a group,
a collection) admits a peer only if every validator accepts at least one of the peer's tickets;
the admission lasts until the earliest expiry among them. Validation reads the tickets from the
peer's current entry, so a peer that removes a ticket from its entry is refused on the next
validation: revocation needs no extra machinery.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeAlias, cast

from node.primitives.digest import Digest
from node.primitives.keys import PeerId
from node.primitives.ticket import Ticket
from node.tickets.errors import TicketConfigError, TicketRejected, TicketsRejected


@dataclass(frozen=True, slots=True)
class Never:
    """The verdict holds until the ticket is removed from the peer's entry."""

    def expired(self, now: float) -> bool:
        return False

    def deadline(self) -> float:
        """``math.inf``: sorts after every finite expiry."""
        return math.inf


@dataclass(frozen=True, slots=True)
class At:
    """The verdict holds while ``now < timestamp`` (unix seconds)."""

    timestamp: float

    def expired(self, now: float) -> bool:
        return now >= self.timestamp

    def deadline(self) -> float:
        return self.timestamp


Expiry: TypeAlias = Never | At


def earliest(expiries: Iterable[Expiry]) -> Expiry:
    """The first of ``expiries`` to lapse; ``Never()`` for none."""
    return min(expiries, key=_deadline, default=Never())


def latest(expiries: Iterable[Expiry]) -> Expiry:
    """The last of ``expiries`` to lapse; ``Never()`` is later than any ``At``.

    Raises ``ValueError`` for no expiries: there is no neutral element.
    """
    return max(expiries, key=_deadline)


def _deadline(expiry: Expiry) -> float:
    return expiry.deadline()


class TicketSubject(Protocol):
    """What a validator may read about a peer: its identity and the tickets in its entry.

    Discovery's signed ``PeerEntry`` satisfies it structurally.
    """

    @property
    def peer_id(self) -> PeerId: ...

    @property
    def network_id(self) -> Digest: ...

    @property
    def start_ms(self) -> int: ...

    @property
    def tickets(self) -> tuple[Ticket, ...]: ...


class TicketValidator(Protocol):
    """Checks tickets of one class.

    ``signature()`` feeds group ids: members whose validators differ in any parameter must not
    form a group together, so it changes whenever a validation parameter changes.
    ``validate`` raises ``TicketRejected`` naming the failed check, or returns until when the
    ticket stays valid. ``now`` is unix seconds, passed in: validators read no clock.
    """

    @property
    def class_id(self) -> Digest: ...

    def signature(self) -> Digest: ...

    def validate(self, data: bytes, peer: TicketSubject, now: float) -> Expiry: ...


RequireTicket: TypeAlias = TicketValidator | Iterable[TicketValidator] | None
"""What ``require_ticket=`` of streams, groups and collections accepts."""


def as_validators(require_ticket: RequireTicket) -> tuple[TicketValidator, ...]:
    """``require_ticket`` as a tuple of validators; names anything that is not one."""
    if require_ticket is None:
        return ()
    candidates: tuple[object, ...] = (
        (require_ticket,) if hasattr(require_ticket, "validate") else tuple(require_ticket)
    )
    for candidate in candidates:
        if not all(hasattr(candidate, a) for a in ("validate", "signature", "class_id")):
            raise TicketConfigError(f"require_ticket: {candidate!r} is not a ticket validator")
    return cast(tuple[TicketValidator, ...], candidates)


def validate_one(validator: TicketValidator, peer: TicketSubject, now: float) -> Expiry:
    """Validate the peer's tickets of ``validator``'s class; the best verdict wins.

    If several tickets of the class pass, the one valid longest counts (the peer stays
    admitted while any of them holds). Raises ``TicketsRejected`` with every ticket's reason
    if none passes, or a "missing" rejection if the peer has none of that class.
    """
    passed: list[Expiry] = []
    rejections: list[TicketRejected] = []
    for ticket in peer.tickets:
        if ticket.class_id != validator.class_id:
            continue
        try:
            passed.append(validator.validate(ticket.data, peer, now))
        except TicketRejected as exc:
            rejections.append(exc)
    if passed:
        return latest(passed)
    if not rejections:
        rejections.append(
            TicketRejected("missing", f"no ticket of class {validator.class_id.short()}")
        )
    raise TicketsRejected(rejections)


def validate_all(validators: Iterable[TicketValidator], peer: TicketSubject, now: float) -> Expiry:
    """Admit ``peer`` only if every validator accepts one of its tickets.

    Returns the earliest expiry over the validators (``Never()`` when there are none).
    Raises ``TicketsRejected`` carrying the reasons of every validator that refused.
    """
    expiries: list[Expiry] = []
    rejections: list[TicketRejected] = []
    for validator in validators:
        try:
            expiries.append(validate_one(validator, peer, now))
        except TicketsRejected as exc:
            rejections.extend(exc.rejections)
    if rejections:
        raise TicketsRejected(rejections)
    return earliest(expiries)
