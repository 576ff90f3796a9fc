"""The ticket file format and ``describe_ticket`` (no verification involved)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation.simulated import SimulatedPlatform
from attestation.verify import INTEL_ROOT_CA_SHA256
from node.primitives import Digest, Ticket
from node.tickets import (
    JWT_CLASS,
    TDX_CLASS,
    JwtTicketBuilder,
    TdxTicketData,
    TicketRejected,
    encode_tdx_ticket,
    mint_tdx_ticket,
)
from node.tickets.describe import describe_ticket
from node.tickets.ticket_file import (
    MAX_TICKET_FILE_SIZE,
    TICKET_FILE_FORMAT,
    dump_ticket,
    load_ticket,
)
from tests.attestation.vectors import COLLATERAL_V4, QUOTE_V4, V4_MRTD, V4_REPORT_DATA
from tests.tickets.subjects import subject

NOW = 1_750_000_000
PEER = subject(1)
JWT = JwtTicketBuilder(b"k" * 32, "HS256").issuer("ops").expires_in(60).mint(PEER.peer_id, now=NOW)
OTHER = Ticket(Digest.from_name("some.future.ticket.v1"), b"\x00\xff opaque")


@pytest.mark.parametrize(("ticket", "name"), [(JWT, "jwt"), (OTHER, "other")])
def test_round_trip_and_layout(ticket: Ticket, name: str) -> None:
    text = dump_ticket(ticket)
    assert text.endswith("\n") and text.count("\n") == 1
    assert json.loads(text) == {
        "format": TICKET_FILE_FORMAT,
        "class": name,
        "class_id": ticket.class_id.hex(),
        "data": base64.b64encode(ticket.data).decode(),
    }
    assert load_ticket(text) == ticket == load_ticket(text.encode())


def document(**changes: Any) -> str:
    doc = json.loads(dump_ticket(JWT))
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None})


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (document(format="mosaik-ticket/v2"), "mosaik-ticket/v1"),
        (document(extra=1), "extra"),
        (document(**{"class": None}), "class"),
        (document(class_id="ab" * 31), "64 hex"),
        (document(class_id="zz" * 32), "not hexadecimal"),
        (document(**{"class": "tdx"}), "disagrees"),
        (document(**{"class": "other"}), "disagrees"),
        (document(class_id=OTHER.class_id.hex()), "disagrees"),
        (document(data="!!!!"), "base64"),
        (document(data=""), "empty"),
        (document(data="é"), "base64"),
        ("[]", "ticket file"),
        ("", "ticket file"),
        (" " * (MAX_TICKET_FILE_SIZE + 1), "exceeds"),
    ],
)
def test_malformed_files_fail_format_naming_the_problem(text: str, detail: str) -> None:
    with pytest.raises(TicketRejected) as info:
        load_ticket(text)
    assert info.value.check == "format" and detail in info.value.detail


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_fuzzed_input_raises_only_format_rejections(data: bytes | str) -> None:
    try:
        load_ticket(data)
    except TicketRejected as exc:
        assert exc.check == "format"


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(dump_ticket(JWT)) - 1), st.characters(codec="ascii"))
def test_mutated_file_loads_or_fails_format(position: int, char: str) -> None:
    text = dump_ticket(JWT)
    mutated = text[:position] + char + text[position + 1 :]
    try:
        ticket = load_ticket(mutated)
    except TicketRejected as exc:
        assert exc.check == "format"
    else:
        assert ticket.class_id == JWT_CLASS


# -- describe_ticket -----------------------------------------------------------------------------


def test_describe_jwt_shows_header_and_claims_unverified() -> None:
    described = describe_ticket(JWT)
    assert described["class"] == "jwt" and described["signature_verified"] is False
    assert described["header"] == {"alg": "HS256", "typ": "JWT"}
    assert described["claims"] == {
        "sub": PEER.peer_id.hex(),
        "iat": NOW,
        "iss": "ops",
        "exp": NOW + 60,
    }
    for data in (b"a.b", b"!!.e30.x", b"W10.W10.x"):  # two segments, not base64, arrays
        with pytest.raises(TicketRejected) as info:
            describe_ticket(Ticket(JWT_CLASS, data))
        assert info.value.check == "format"


def test_describe_other_class_shows_only_its_identity() -> None:
    assert describe_ticket(OTHER) == {
        "class": "other",
        "class_id": OTHER.class_id.hex(),
        "size": len(OTHER.data),
    }


def test_describe_real_quote_is_not_simulated() -> None:
    ticket = encode_tdx_ticket(TdxTicketData(QUOTE_V4, NOW, NOW + 60, COLLATERAL_V4.encode()))
    described = describe_ticket(ticket, peer_id=PEER.peer_id, network_id=PEER.network_id,
                                start_ms=PEER.start_ms)  # fmt: skip
    assert described["simulated"] is False
    assert described["root_ca_sha256"] == INTEL_ROOT_CA_SHA256
    assert described["measurements"]["mrtd"] == V4_MRTD.hex()
    assert described["report_data"] == V4_REPORT_DATA.hex()
    assert described["binding"] == "mismatch"  # the vector's report data binds something else
    assert described["collateral"]["fmspc"] and described["collateral"]["not_after"] > NOW


def test_describe_simulated_ticket_and_its_binding() -> None:
    platform = SimulatedPlatform.ephemeral(3)
    ticket = mint_tdx_ticket(platform, PEER.peer_id, PEER.network_id, PEER.start_ms, NOW, NOW + 60)
    statement = {"peer_id": PEER.peer_id, "network_id": PEER.network_id}
    described = describe_ticket(ticket, **statement, start_ms=PEER.start_ms)
    assert described["simulated"] is True and described["binding"] == "matches"
    assert described["root_ca_sha256"] != INTEL_ROOT_CA_SHA256
    assert (described["quoted_at"], described["expiration"]) == (NOW, NOW + 60)
    assert described["measurements"]["mrtd"] == platform.td_defaults.mrtd.hex()
    assert described["collateral"] is None
    assert describe_ticket(ticket, **statement, start_ms=PEER.start_ms + 1)["binding"] == (
        "mismatch"
    )
    assert describe_ticket(ticket)["binding"] == "not checked"

    garbage = encode_tdx_ticket(TdxTicketData(platform.get_quote(bytes(64)), NOW, NOW + 1, b"{}"))
    assert "error" in describe_ticket(garbage)["collateral"]
    for data in (b"not zlib", encode_tdx_ticket(TdxTicketData(b"short", NOW, NOW + 1)).data):
        with pytest.raises(TicketRejected) as info:
            describe_ticket(Ticket(TDX_CLASS, data))
        assert info.value.check in {"format", "quote"}
