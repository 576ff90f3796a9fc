"""Peer entries: signing, verification on decode, canonical form, versioning."""

from __future__ import annotations

import msgspec
import pytest

from node.discovery import (
    MAX_ENTRY_SIZE,
    AddGroups,
    AddStreams,
    AddTags,
    AddTicket,
    GracefulDeparture,
    InvalidDeparture,
    InvalidEntry,
    LocalEntry,
    PeerEntry,
    RemoveGroups,
    RemoveStreams,
    RemoveTags,
    RemoveTicket,
    SetAddrs,
    SignedPeerEntry,
    encode_entry,
)
from node.discovery.entry import _SignedWire, _signing_digest
from node.primitives import Digest, Ticket, encode
from tests.discovery.conftest import NETWORK, NOW, key

JWT = Digest.from_name("jwt")


def rich_entry(local: LocalEntry) -> SignedPeerEntry:
    local.apply(AddTags(frozenset({Digest.from_name("matcher"), Digest.from_name("eu")})), NOW)
    local.apply(AddStreams(frozenset({Digest.from_name("orders")})), NOW)
    local.apply(AddGroups(frozenset({Digest.from_name("book")})), NOW)
    local.apply(AddTicket(Ticket(JWT, b"token-a")), NOW)
    local.apply(AddTicket(Ticket(JWT, b"token-b")), NOW)
    return local.signed


def test_sign_then_decode_round_trips(local: LocalEntry) -> None:
    signed = rich_entry(local)
    decoded = SignedPeerEntry.decode(signed.encode())
    assert decoded == signed
    assert decoded.entry == signed.entry
    assert decoded.peer_id == key(1).peer_id
    assert decoded.version == (NOW, signed.entry.update_ms)


def test_canonical_encoding_does_not_depend_on_set_order(local: LocalEntry) -> None:
    entry = rich_entry(local).entry
    tags = sorted(entry.tags)
    forwards = msgspec.structs.replace(entry, tags=frozenset(tags))
    backwards = msgspec.structs.replace(entry, tags=frozenset(reversed(tags)))
    assert encode_entry(forwards) == encode_entry(backwards)


def test_every_single_bit_flip_is_rejected_with_a_reason(local: LocalEntry) -> None:
    data = rich_entry(local).encode()
    reasons = set()
    for index in range(len(data)):
        for bit in range(8):
            tampered = bytearray(data)
            tampered[index] ^= 1 << bit
            with pytest.raises(InvalidEntry) as info:
                SignedPeerEntry.decode(bytes(tampered))
            assert info.value.reason
            reasons.add(info.value.reason.split(" ")[0])
    # Flips inside fields or the signature fail the signature check; flips in the framing fail
    # decoding. Nothing else gets through.
    assert {"signature", "malformed"} <= reasons


def test_flip_in_the_signature_names_the_signature(local: LocalEntry) -> None:
    signed = rich_entry(local)
    body = encode_entry(signed.entry)
    signature = bytearray(signed.signature)
    signature[10] ^= 0x01
    with pytest.raises(InvalidEntry, match="signature does not verify"):
        SignedPeerEntry.decode(encode(_SignedWire(entry=body, signature=bytes(signature))))
    with pytest.raises(InvalidEntry, match="signature is 63 bytes"):
        SignedPeerEntry.decode(encode(_SignedWire(entry=body, signature=bytes(signature[:63]))))


@pytest.mark.parametrize(
    "field, value",
    [
        ("network_id", Digest.from_name("other")),
        ("start_ms", NOW - 1),
        ("update_ms", NOW + 99),
        ("addrs", ("6.6.6.6:1",)),
        ("tags", frozenset({Digest.from_name("admin")})),
        ("streams", frozenset()),
        ("groups", frozenset({Digest.from_name("evil")})),
        ("tickets", ()),
    ],
)
def test_a_changed_field_under_the_old_signature_is_rejected(
    local: LocalEntry, field: str, value: object
) -> None:
    signed = rich_entry(local)
    forged = msgspec.structs.replace(signed.entry, **{field: value})
    data = encode(_SignedWire(entry=encode_entry(forged), signature=signed.signature))
    with pytest.raises(InvalidEntry, match="signature does not verify"):
        SignedPeerEntry.decode(data)


def test_entry_signed_by_another_key_is_rejected(local: LocalEntry) -> None:
    entry = local.entry
    body = encode_entry(entry)
    stolen = key(2).sign(_signing_digest(body))
    with pytest.raises(InvalidEntry, match="signature does not verify"):
        SignedPeerEntry.decode(encode(_SignedWire(entry=body, signature=stolen)))
    with pytest.raises(InvalidEntry, match="cannot be signed by the key"):
        SignedPeerEntry.sign(entry, key(2))


def test_non_canonical_encoding_is_rejected_even_if_signed(local: LocalEntry) -> None:
    entry = rich_entry(local).entry
    canonical = msgspec.msgpack.decode(encode_entry(entry))
    canonical[6] = list(reversed(canonical[6]))  # tags out of order
    body = msgspec.msgpack.encode(canonical)
    signature = key(1).sign(_signing_digest(body))
    with pytest.raises(InvalidEntry, match="not canonically encoded"):
        SignedPeerEntry.decode(encode(_SignedWire(entry=body, signature=signature)))


def test_garbage_and_oversized_input_are_rejected() -> None:
    with pytest.raises(InvalidEntry, match="malformed signed entry"):
        SignedPeerEntry.decode(b"\x93\x01\x02")
    with pytest.raises(InvalidEntry, match="malformed entry body"):
        SignedPeerEntry.decode(encode(_SignedWire(entry=b"\x01", signature=bytes(64))))
    with pytest.raises(InvalidEntry, match=f"exceeds the maximum of {MAX_ENTRY_SIZE} bytes"):
        SignedPeerEntry.decode(bytes(MAX_ENTRY_SIZE + 1))


def test_signed_entries_cannot_be_constructed_directly(local: LocalEntry) -> None:
    with pytest.raises(TypeError, match="sign"):
        SignedPeerEntry(local.entry, bytes(64), b"", object())


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"update_ms": NOW - 1}, "before start_ms"),
        ({"addrs": ("no-port",)}, "not host:port"),
        ({"addrs": ("a:1", "a:1")}, "duplicates"),
        ({"addrs": tuple(f"h{i}:1" for i in range(17))}, "at most 16"),
        ({"tickets": (Ticket(JWT, b"x"), Ticket(JWT, b"x"))}, "sorted by ticket id"),
    ],
)
def test_invalid_entries_cannot_be_built(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "protocol": 1,
        "network_id": NETWORK,
        "peer_id": key(1).peer_id,
        "start_ms": NOW,
        "update_ms": NOW,
    }
    with pytest.raises(ValueError, match=message):
        PeerEntry(**{**fields, **changes})  # type: ignore[arg-type]


def test_every_change_bumps_the_version(local: LocalEntry) -> None:
    tag = Digest.from_name("t")
    ticket = Ticket(JWT, b"token")
    changes = [
        AddTags(frozenset({tag})),
        RemoveTags(frozenset({tag})),
        AddStreams(frozenset({tag})),
        RemoveStreams(frozenset({tag})),
        AddGroups(frozenset({tag})),
        RemoveGroups(frozenset({tag})),
        AddTicket(ticket),
        RemoveTicket(ticket.id()),
        SetAddrs(("10.0.0.9:1",)),
    ]
    last = local.entry.update_ms
    for change in changes:
        assert local.apply(change, NOW)  # the clock stands still: the version still moves
        assert local.entry.update_ms == last + 1
        last = local.entry.update_ms
        assert SignedPeerEntry.decode(local.signed.encode()) == local.signed


def test_version_follows_the_clock_and_never_goes_back(local: LocalEntry) -> None:
    local.apply(AddTags(frozenset({Digest.from_name("a")})), NOW + 5_000)
    assert local.entry.update_ms == NOW + 5_001
    local.apply(AddTags(frozenset({Digest.from_name("b")})), NOW)  # clock stepped back
    assert local.entry.update_ms == NOW + 5_002
    assert local.entry.start_ms == NOW


def test_no_op_changes_keep_the_version(local: LocalEntry) -> None:
    tag = Digest.from_name("a")
    local.apply(AddTags(frozenset({tag})), NOW)
    before = local.signed
    assert not local.apply(AddTags(frozenset({tag})), NOW + 10)
    assert not local.apply(RemoveTicket(Digest.from_name("absent")), NOW + 10)
    assert local.signed is before


def test_tickets_are_kept_sorted_and_replaced_by_id(local: LocalEntry) -> None:
    for data in (b"c", b"a", b"b", b"a"):
        local.apply(AddTicket(Ticket(JWT, data)), NOW)
    ids = [ticket.id() for ticket in local.entry.tickets]
    assert ids == sorted(ids) and len(ids) == 3
    assert local.entry.ticket(Ticket(JWT, b"b").id()) == Ticket(JWT, b"b")


def test_refresh_changes_only_the_version(local: LocalEntry) -> None:
    before = local.entry
    after = local.refresh(NOW + 45_000).entry
    assert after.update_ms == NOW + 45_001
    assert after.same_content(before) and after != before


def test_a_change_that_would_be_too_large_is_refused_and_changes_nothing(
    local: LocalEntry,
) -> None:
    before = local.signed
    with pytest.raises(InvalidEntry, match="exceeds the maximum"):
        local.apply(AddTicket(Ticket(JWT, bytes(MAX_ENTRY_SIZE))), NOW)
    with pytest.raises(InvalidEntry, match="not host:port"):
        local.apply(SetAddrs(("nonsense",)), NOW)
    assert local.signed is before


def test_departure_notices_verify_and_reject_tampering() -> None:
    notice = GracefulDeparture.sign(key(3), NETWORK, (NOW, NOW + 5), NOW + 10)
    decoded = GracefulDeparture.decode(notice.encode())
    assert decoded == notice
    assert (decoded.peer_id, decoded.version, decoded.timestamp_ms) == (
        key(3).peer_id,
        (NOW, NOW + 5),
        NOW + 10,
    )
    data = notice.encode()
    for index in range(len(data)):
        tampered = bytearray(data)
        tampered[index] ^= 0x04
        with pytest.raises(InvalidDeparture):
            GracefulDeparture.decode(bytes(tampered))
    with pytest.raises(InvalidDeparture, match="exceeds the maximum"):
        GracefulDeparture.decode(bytes(1000))
    with pytest.raises(TypeError):
        GracefulDeparture(notice._body, notice.signature, object())
