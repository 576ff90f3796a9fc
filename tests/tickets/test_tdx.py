"""TDX tickets over quotes from the SIMULATED TDX platform (no TDX hardware here)."""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import blake3
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation.collateral import Collateral
from attestation.errors import ProviderError
from attestation.policy import MeasurementRecord, Policy
from attestation.simulated import SimulatedPlatform
from node.primitives import Digest, Ticket
from node.tickets import (
    TDX_CLASS,
    At,
    JwtTicketBuilder,
    JwtTicketValidator,
    MintError,
    QuoteRejected,
    TdxTicketData,
    TdxTicketValidator,
    TicketConfigError,
    TicketRejected,
    TicketsRejected,
    decode_tdx_ticket,
    encode_tdx_ticket,
    mint_tdx_ticket,
    tdx_report_data,
    validate_all,
)
from tests.tickets.subjects import Subject, subject

NOW = 1_750_000_000
DAY = 86_400
PLATFORM = SimulatedPlatform.ephemeral(7)
COLLATERAL = PLATFORM.collateral(NOW - DAY)
PEER = subject(1)
POLICY = Policy(measurements=(MeasurementRecord.of("image", mrtd=PLATFORM.td_defaults.mrtd),))


def mint(
    peer: Subject = PEER,
    *,
    quoted_at: int = NOW - 60,
    expiration: int = NOW + 3600,
    collateral: Any = COLLATERAL,
    provider: Any = PLATFORM,
) -> Ticket:
    return mint_tdx_ticket(
        provider, peer.peer_id, peer.network_id, peer.start_ms, quoted_at, expiration, collateral
    )


TICKET = mint()


def validator(**options: Any) -> TdxTicketValidator:
    options.setdefault("root_ca_der", PLATFORM.root_ca_der)
    return TdxTicketValidator(options.pop("policy", POLICY), **options)


def rejection(v: TdxTicketValidator, ticket: Ticket, peer: Subject = PEER, now: float = NOW) -> Any:
    with pytest.raises(TicketRejected) as info:
        v.validate(ticket.data, peer, now)
    return info.value


class Quoting:
    """A quote provider over the simulated platform with chosen TD report fields."""

    def __init__(self, **fields: bytes) -> None:
        self.fields = fields

    def get_quote(self, report_data: bytes) -> bytes:
        return PLATFORM.quote(report_data, **self.fields)


def test_simulated_ticket_validates_until_its_expiration() -> None:
    assert TICKET.class_id == TDX_CLASS == Digest.from_name("mosaik.tee.tdx.ticket.v1")
    assert validator().validate(TICKET.data, PEER, NOW) == At(NOW + 3600)
    assert validate_all([validator()], PEER.with_tickets(TICKET), NOW) == At(NOW + 3600)


def test_report_data_layout() -> None:
    start, quoted, expires = PEER.start_ms, NOW - 60, NOW + 3600
    fields = [
        PEER.peer_id.bytes,
        PEER.network_id.bytes,
        start.to_bytes(8, "little"),
        quoted.to_bytes(8, "little"),
        expires.to_bytes(8, "little"),
    ]
    head = blake3.blake3(b"mosaik.tdx.ticket.extra").digest()
    for field in fields:
        head = blake3.blake3(head + field).digest()
    tail = blake3.blake3(
        b"".join(fields), derive_key_context="mosaik-py 2025 tdx ticket report-data tail"
    ).digest()
    report_data = tdx_report_data(PEER.peer_id, PEER.network_id, start, quoted, expires)
    assert report_data == head + tail
    quote = decode_tdx_ticket(TICKET.data).quote
    assert report_data in quote


def test_replay_by_another_peer_network_or_run_fails_binding() -> None:
    v = validator()
    assert rejection(v, TICKET, subject(2)).check == "binding"
    assert rejection(v, TICKET, subject(1, network=Digest.from_name("other"))).check == "binding"
    assert rejection(v, TICKET, dataclasses.replace(PEER, start_ms=PEER.start_ms + 1)).check == (
        "binding"
    )
    # Rewriting the ticket's times breaks the binding too.
    data = decode_tdx_ticket(TICKET.data)
    stretched = encode_tdx_ticket(msgspec.structs.replace(data, expiration=data.expiration + 1))
    assert rejection(v, stretched).check == "binding"


def test_expired_ticket_is_rejected() -> None:
    v = validator()
    assert rejection(v, TICKET, now=NOW + 3600).check == "expiration"
    assert validator(leeway=5).validate(TICKET.data, PEER, NOW + 3600) == At(NOW + 3605)


def test_time_checks() -> None:
    assert rejection(validator(), mint(quoted_at=NOW + 60)).check == "quoted_at"
    assert rejection(validator(max_lifetime=600), TICKET).check == "max_lifetime"
    assert rejection(validator(max_age=30), TICKET).check == "max_age"
    assert rejection(validator(not_before=NOW), TICKET).check == "not_before"
    assert validator(max_age=600).validate(TICKET.data, PEER, NOW) == At(NOW - 60 + 600)


def test_collateral_window_bounds_the_expiry() -> None:
    old = PLATFORM.collateral(NOW - 29 * DAY)
    ticket = mint(collateral=old, expiration=NOW + 3 * DAY)
    not_after = Collateral.from_json(old).not_after
    assert NOW < not_after < NOW + 3 * DAY
    assert validator().validate(ticket.data, PEER, NOW) == At(not_after)
    rejected = rejection(validator(), ticket, now=not_after)
    assert isinstance(rejected, QuoteRejected)
    assert (rejected.check, rejected.rule) == ("quote", "collateral.expired")


def test_wrong_measurement_names_the_policy_rule() -> None:
    ticket = mint(provider=Quoting(mrtd=b"\x01" * 48))
    rejected = rejection(validator(), ticket)
    assert isinstance(rejected, QuoteRejected)
    assert (rejected.check, rejected.rule) == ("policy", "measurements.mrtd")


def test_debug_td_is_refused() -> None:
    td_attributes = bytearray(PLATFORM.td_defaults.td_attributes)
    td_attributes[0] |= 1
    rejected = rejection(validator(), mint(provider=Quoting(td_attributes=bytes(td_attributes))))
    # dcap-qvl itself refuses debug TDs, before our policy would.
    assert isinstance(rejected, QuoteRejected) and rejected.rule == "td_attributes.debug"


def test_quote_from_another_root_is_refused() -> None:
    stranger = SimulatedPlatform.ephemeral(8)
    ticket = mint(provider=stranger, collateral=stranger.collateral(NOW - DAY))
    rejected = rejection(validator(), ticket)
    assert isinstance(rejected, QuoteRejected) and rejected.check == "quote"
    assert rejected.rule.startswith("signature_chain")


def test_tampered_quote_signature_is_refused() -> None:
    data = decode_tdx_ticket(TICKET.data)
    quote = bytearray(data.quote)
    quote[700] ^= 1  # inside the quote signature, after the 632-byte signed region
    tampered = encode_tdx_ticket(msgspec.structs.replace(data, quote=bytes(quote)))
    assert rejection(validator(), tampered).check == "quote"


def test_collateral_from_the_validator_or_the_ticket() -> None:
    bare = mint(collateral=None)
    assert rejection(validator(), bare).check == "collateral"
    fixed = Collateral.from_json(COLLATERAL)
    assert validator(collateral=fixed).validate(bare.data, PEER, NOW) == At(NOW + 3600)
    asked: list[int] = []

    def source(quote: bytes, now: int) -> Collateral:
        asked.append(now)
        return fixed

    assert validator(collateral=source).validate(bare.data, PEER, NOW) == At(NOW + 3600)
    assert asked == [NOW]
    garbled = encode_tdx_ticket(
        msgspec.structs.replace(decode_tdx_ticket(TICKET.data), collateral=b"{}")
    )
    assert rejection(validator(), garbled).check == "collateral"


def test_signature_covers_policy_root_and_bounds() -> None:
    other_policy = Policy(measurements=(MeasurementRecord.of("image", mrtd=b"\x02" * 48),))
    variants = [
        validator(),
        validator(root_ca_der=None),
        validator(root_ca_der=SimulatedPlatform.ephemeral(8).root_ca_der),
        validator(policy=other_policy),
        validator(policy=Policy(measurements=None)),
        validator(max_age=60),
        validator(max_lifetime=60),
        validator(not_before=NOW),
        validator(leeway=1),
    ]
    assert len({v.signature() for v in variants}) == len(variants)
    assert validator().signature() == validator().signature()


def test_configuration_errors() -> None:
    with pytest.raises(TicketConfigError, match="report_data"):
        validator(policy=POLICY.with_report_data(bytes(64)))
    with pytest.raises(TicketConfigError, match="max_age"):
        validator(max_age=-1)
    with pytest.raises(TicketConfigError, match="expiration"):
        mint(quoted_at=NOW, expiration=NOW)
    with pytest.raises(TicketConfigError, match="collateral"):
        mint(collateral="not json")


def test_provider_failure_is_a_mint_error() -> None:
    class Broken:
        def get_quote(self, report_data: bytes) -> bytes:
            raise ProviderError("configfs-tsm busy")

    with pytest.raises(MintError, match="busy"):
        mint(provider=Broken())


def test_validate_all_with_jwt_and_tdx_and_revocation() -> None:
    secret = b"k" * 32
    jwt_validator = JwtTicketValidator({"HS256": secret})
    jwt_ticket = JwtTicketBuilder(secret, "HS256").expires_in(600).mint(PEER.peer_id, now=NOW)
    peer = PEER.with_tickets(jwt_ticket, TICKET)
    assert validate_all([jwt_validator, validator()], peer, NOW) == At(NOW + 600)
    with pytest.raises(TicketsRejected) as info:
        validate_all([jwt_validator, validator()], PEER.with_tickets(jwt_ticket), NOW)
    assert info.value.check == "missing"


def test_ticket_size_is_compressed() -> None:
    data = decode_tdx_ticket(TICKET.data)
    assert len(TICKET.data) < len(msgspec.msgpack.encode(data)) / 2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_ticket_data_only_rejects(data: bytes) -> None:
    with pytest.raises(TicketRejected):
        validator().validate(data, PEER, NOW)


RAW = zlib.decompress(TICKET.data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_mutated_tickets_only_reject(data: st.DataObject) -> None:
    """Mutations of the compressed bytes and of the decoded body (quote included)."""
    compressed = data.draw(st.booleans())
    original = TICKET.data if compressed else RAW
    buffer = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(buffer) - 1))
        buffer[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, 8))
    mutated = bytes(buffer[: len(buffer) - cut])
    ticket_data = mutated if compressed else zlib.compress(mutated)
    try:
        validator().validate(ticket_data, PEER, NOW)
    except TicketRejected:
        return
    # Accepted: only an equivalent encoding may pass (zlib header slack, hex case in the
    # collateral JSON, ...), never a ticket that states something else.
    accepted, expected = decode_tdx_ticket(ticket_data), decode_tdx_ticket(TICKET.data)
    assert (accepted.quote, accepted.quoted_at, accepted.expiration) == (
        expected.quote,
        expected.quoted_at,
        expected.expiration,
    )
    assert accepted.collateral is not None and expected.collateral is not None
    assert (
        Collateral.from_json(accepted.collateral).to_json()
        == Collateral.from_json(expected.collateral).to_json()
    )


def test_decompression_is_bounded() -> None:
    bomb = zlib.compress(b"\x00" * (4 * 1024 * 1024))
    with pytest.raises(TicketRejected, match="decompresses beyond"):
        decode_tdx_ticket(bomb)
    assert decode_tdx_ticket(encode_tdx_ticket(TdxTicketData(b"q", 1, 2)).data).collateral is None
