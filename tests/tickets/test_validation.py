"""The combinator over validators, expiries and the expiry timer."""

from __future__ import annotations

import math
import types
from dataclasses import dataclass

import pytest

import node.tickets
from node.errors import ConfigError, MosaikError
from node.primitives import Digest, Ticket
from node.tickets import (
    At,
    Expiry,
    ExpiryTimer,
    MintError,
    Never,
    QuoteRejected,
    TicketConfigError,
    TicketError,
    TicketGate,
    TicketRejected,
    TicketsRejected,
    TicketSubject,
    earliest,
    latest,
    validate_all,
    validate_one,
)
from tests.tickets.subjects import subject


@dataclass(frozen=True)
class Table:
    """A validator whose verdict per ticket data comes from a table (absent: rejected)."""

    name: str
    verdicts: dict[bytes, Expiry]

    @property
    def class_id(self) -> Digest:
        return Digest.from_name(self.name)

    def signature(self) -> Digest:
        return self.class_id.derive("sig")

    def validate(self, data: bytes, peer: TicketSubject, now: float) -> Expiry:
        if data not in self.verdicts:
            raise TicketRejected("table", f"{data!r} unknown")
        return self.verdicts[data]


def ticket(name: str, data: bytes) -> Ticket:
    return Ticket(Digest.from_name(name), data)


def test_expiry_ordering() -> None:
    assert earliest([]) == Never()
    assert earliest([Never(), At(5), At(3)]) == At(3)
    assert latest([At(5), At(3)]) == At(5)
    assert latest([At(5), Never()]) == Never()
    assert At(3).expired(3) and not At(3).expired(2.999)
    assert not Never().expired(math.inf)


def test_no_validators_admit_forever() -> None:
    assert validate_all([], subject(), now=0) == Never()


def test_all_validators_must_pass_and_earliest_expiry_wins() -> None:
    a = Table("a", {b"ok": At(100)})
    b = Table("b", {b"ok": At(50)})
    c = Table("c", {b"ok": Never()})
    peer = subject().with_tickets(ticket("a", b"ok"), ticket("b", b"ok"), ticket("c", b"ok"))
    assert validate_all([a, b, c], peer, now=0) == At(50)
    assert validate_all([a, c], peer, now=0) == At(100)
    assert validate_all([c], peer, now=0) == Never()


def test_missing_class_is_rejected_and_reasons_aggregate() -> None:
    a = Table("a", {b"ok": At(100)})
    b = Table("b", {b"ok": At(50)})
    peer = subject().with_tickets(ticket("a", b"bad"))
    with pytest.raises(TicketsRejected) as info:
        validate_all([a, b], peer, now=0)
    assert [r.check for r in info.value.rejections] == ["table", "missing"]
    assert info.value.check == "table,missing"
    assert "unknown" in str(info.value) and "no ticket of class" in str(info.value)


def test_one_passing_ticket_of_a_class_suffices_and_longest_counts() -> None:
    a = Table("a", {b"short": At(10), b"long": At(90)})
    peer = subject().with_tickets(ticket("a", b"bad"), ticket("a", b"short"), ticket("a", b"long"))
    assert validate_one(a, peer, now=0) == At(90)


def test_removing_the_ticket_revokes_at_once() -> None:
    a = Table("a", {b"ok": Never()})
    peer = subject().with_tickets(ticket("a", b"ok"))
    assert validate_all([a], peer, now=0) == Never()
    with pytest.raises(TicketsRejected) as info:
        validate_all([a], peer.with_tickets(), now=0)
    assert info.value.check == "missing"


def test_timer_reports_lapsed_keys_in_order() -> None:
    timer: ExpiryTimer[str] = ExpiryTimer()
    assert timer.next_deadline() is None
    timer.schedule("x", At(30))
    timer.schedule("y", At(10))
    timer.schedule("z", Never())
    assert "z" not in timer and len(timer) == 2
    assert timer.next_deadline() == 10
    assert timer.due(9.99) == []
    assert timer.due(30) == ["y", "x"]
    assert len(timer) == 0 and timer.next_deadline() is None


def test_timer_reschedule_and_cancel_replace_deadlines() -> None:
    timer: ExpiryTimer[int] = ExpiryTimer()
    timer.schedule(1, At(10))
    timer.schedule(1, At(40))  # re-validated: the bond holds longer
    timer.schedule(2, At(20))
    timer.cancel(2)
    timer.schedule(3, At(5))
    timer.schedule(3, Never())  # re-validated with a non-expiring ticket
    assert timer.next_deadline() == 40
    assert timer.deadline_of(1) == 40 and timer.deadline_of(2) is None
    assert timer.due(39) == []
    assert timer.due(40) == [1]


def test_timer_memory_tracks_live_keys() -> None:
    timer: ExpiryTimer[int] = ExpiryTimer()
    for i in range(10_000):
        timer.schedule(i % 3, At(float(i)))
    assert len(timer._heap) <= 2 * len(timer) + 65
    assert timer.due(1e9) == [1, 2, 0]  # last deadlines: 9997, 9998, 9999


def test_exported_names() -> None:
    assert set(node.tickets.__all__) == {
        name
        for name in dir(node.tickets)
        if not name.startswith("_")
        and not isinstance(getattr(node.tickets, name), types.ModuleType)
    }


def test_gate_admits_schedules_and_revokes_on_entry_change() -> None:
    a = Table("a", {b"ok": At(100), b"longer": At(200)})
    b = Table("b", {b"ok": Never()})
    gate: TicketGate[str] = TicketGate([a, b])
    assert gate.signatures() == (a.signature(), b.signature())
    peer = subject().with_tickets(ticket("a", b"ok"), ticket("b", b"ok"))
    assert gate.admit("sub-1", peer, now=0) == At(100)
    assert "sub-1" in gate and gate.next_deadline() == 100
    # A renewed ticket in a newer entry pushes the deadline out.
    renewed = peer.with_tickets(ticket("a", b"longer"), ticket("b", b"ok"))
    assert gate.entry_changed("sub-1", renewed, now=50) is None
    assert gate.next_deadline() == 200
    # Removing the b ticket revokes at once.
    rejected = gate.entry_changed("sub-1", renewed.with_tickets(ticket("a", b"longer")), now=60)
    assert rejected is not None and rejected.check == "missing"
    assert "sub-1" not in gate and gate.next_deadline() is None
    with pytest.raises(TicketsRejected):
        gate.admit("sub-2", subject(), now=0)
    assert len(gate) == 0


def test_gate_reports_expired_admissions() -> None:
    gate: TicketGate[int] = TicketGate([Table("a", {b"1": At(10), b"2": At(20)})])
    gate.admit(1, subject(1).with_tickets(ticket("a", b"1")), now=0)
    gate.admit(2, subject(2).with_tickets(ticket("a", b"2")), now=0)
    gate.admit(3, subject(3).with_tickets(ticket("a", b"2")), now=0)
    gate.release(3)
    assert gate.expired(15) == [1]
    assert gate.expired(25) == [2]
    assert len(gate) == 0


def test_error_tree() -> None:
    assert issubclass(TicketError, MosaikError)
    assert issubclass(TicketConfigError, ConfigError) and issubclass(TicketConfigError, TicketError)
    assert issubclass(MintError, TicketError)
    assert issubclass(TicketsRejected, TicketRejected) and issubclass(QuoteRejected, TicketRejected)
    rejected = QuoteRejected("policy", "measurements.mrtd", "no record matches")
    assert (rejected.check, rejected.rule) == ("policy", "measurements.mrtd")
    assert str(rejected) == "policy: measurements.mrtd: no record matches"
