"""Producer-side admission (sans I/O): the rules in the order the producer applies them."""

from __future__ import annotations

from node.discovery import PeerInfo
from node.primitives import Digest
from node.streams.admission import Admission, Admitted, Refused, Revoked, route
from node.streams.config import ProducerConfig
from node.streams.messages import Subscribe
from node.tickets import At, JwtTicketBuilder, JwtTicketValidator, Never
from node.transport import codes
from tests.streams.helpers import NETWORK, NOW, STREAM, info, key

SECRET = b"s" * 32
VALIDATOR = JwtTicketValidator({"HS256": SECRET})


def config(**options: object) -> ProducerConfig:
    return ProducerConfig(stream_id=STREAM, datum_type=bytes, **options)  # type: ignore[arg-type]


def ticket(n: int, lifetime: float = 60):
    return JwtTicketBuilder(SECRET, "HS256").expires_in(lifetime).mint(key(n).peer_id, now=NOW)


def tagged(tag: str):
    return lambda peer: Digest.from_name(tag) in peer.tags


def test_route_checks_network_then_catalog_then_stream() -> None:
    request = Subscribe(NETWORK, STREAM)
    other = Subscribe(Digest.from_name("elsewhere"), STREAM)
    assert route(other, NETWORK, None, False) == Refused(
        codes.DIFFERENT_NETWORK, f"this node is on network {NETWORK.short()}"
    )
    refused = route(request, NETWORK, None, True)
    assert refused is not None and refused.code == codes.UNKNOWN_PEER
    refused = route(request, NETWORK, info(2), False)
    assert refused is not None and refused.code == codes.STREAM_NOT_FOUND
    assert route(request, NETWORK, info(2), True) is None


def test_capacity_is_checked_before_predicates_and_freed_on_release() -> None:
    admission = Admission(config(max_consumers=2, require=(tagged("ok"),)))
    assert admission.admit(1, info(1, tags=("ok",)), NOW) == Admitted(Never())
    assert admission.admit(2, info(2, tags=("ok",)), NOW) == Admitted(Never())
    full = admission.admit(3, info(3), NOW)
    assert isinstance(full, Refused) and full.code == codes.STREAM_NO_CAPACITY
    admission.release(1)
    refused = admission.admit(3, info(3), NOW)
    assert isinstance(refused, Refused) and refused.code == codes.STREAM_NOT_ALLOWED
    assert admission.admit(4, info(4, tags=("ok",)), NOW) == Admitted(Never())
    assert set(admission.subscribers) == {2, 4}


def test_predicates_are_and_composed_and_a_raising_one_refuses() -> None:
    admission = Admission(config(require=(tagged("a"), tagged("b"))))
    refused = admission.admit(1, info(1, tags=("a",)), NOW)
    assert refused == Refused(codes.STREAM_NOT_ALLOWED, "peer does not satisfy require[1]")
    assert isinstance(admission.admit(2, info(2, tags=("a", "b")), NOW), Admitted)

    def broken(peer: PeerInfo) -> bool:
        raise KeyError("boom")

    refused = Admission(config(require=(broken,))).admit(1, info(1), NOW)
    assert isinstance(refused, Refused) and "require[0] raised KeyError" in refused.reason


def test_tickets_are_required_and_their_expiry_revokes() -> None:
    admission = Admission(config(require_ticket=(VALIDATOR,)))
    missing = admission.admit(1, info(1), NOW)
    assert isinstance(missing, Refused) and missing.code == codes.STREAM_NOT_ALLOWED
    assert "missing" in missing.reason
    admitted = admission.admit(2, info(2, tickets=(ticket(2, lifetime=30),)), NOW)
    assert admitted == Admitted(At(NOW + 30))
    assert admission.next_deadline() == NOW + 30
    assert admission.tick(NOW + 29) == []
    assert admission.tick(NOW + 30) == [Revoked(2, codes.STREAM_NOT_ALLOWED, "ticket expired")]
    assert not admission.subscribers


def test_a_ticket_bound_to_another_peer_is_refused() -> None:
    refused = Admission(config(require_ticket=(VALIDATOR,))).admit(
        1, info(1, tickets=(ticket(9),)), NOW
    )
    assert isinstance(refused, Refused) and "sub" in refused.reason


def test_changed_entries_are_checked_again() -> None:
    admission = Admission(config(require=(tagged("ok"),), require_ticket=(VALIDATOR,)))
    good = info(1, tags=("ok",), tickets=(ticket(1),))
    assert isinstance(admission.admit(7, good, NOW), Admitted)
    assert admission.peer_changed(info(2, tags=("ok",)), NOW) == []  # another peer
    retagged = info(1, tags=("ok", "new"), tickets=(ticket(1),), update_ms=2)
    assert admission.peer_changed(retagged, NOW) == []
    assert admission.subscribers[7] is retagged
    untagged = info(1, tickets=(ticket(1),), update_ms=3)
    assert admission.peer_changed(untagged, NOW) == [
        Revoked(7, codes.STREAM_NOT_ALLOWED, "peer does not satisfy require[0]")
    ]
    assert isinstance(admission.admit(8, good, NOW), Admitted)
    revoked = admission.peer_changed(info(1, tags=("ok",), update_ms=4), NOW)
    assert [r.key for r in revoked] == [8] and "tickets rejected" in revoked[0].reason
    assert admission.next_deadline() is None


def test_departed_consumers_are_revoked_with_unknown_peer() -> None:
    admission = Admission(config())
    admission.admit(1, info(1), NOW)
    admission.admit(2, info(1), NOW)
    admission.admit(3, info(2), NOW)
    revoked = admission.peer_departed(key(1).peer_id)
    assert [(r.key, r.code) for r in revoked] == [(1, codes.UNKNOWN_PEER), (2, codes.UNKNOWN_PEER)]
    assert set(admission.subscribers) == {3}
