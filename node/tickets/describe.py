"""What a ticket says, read without verifying anything: for people and logs, not for admission.

``describe_ticket`` returns a JSON-ready dict. JWT tickets show their header and claims as
written; TDX tickets show the statement's times, the quote's measurements and report data,
whether the quote's certificate chain ends at Intel's root (if not, it came from a SIMULATED
platform or another untrusted root), and, given the statement's peer, network and start time,
whether the report data commits to them. Only ``validate``/``validate_all`` decide admission.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.collateral import as_collateral
from attestation.errors import AttestationError, QuoteFormatError
from attestation.quote import CERT_PCK_CHAIN, Quote, parse_quote
from attestation.verify import INTEL_ROOT_CA_SHA256
from node.primitives import Digest, PeerId, Ticket
from node.tickets.errors import QuoteRejected, TicketRejected
from node.tickets.jwt_ticket import JWT_CLASS
from node.tickets.tdx_ticket import TDX_CLASS, decode_tdx_ticket, tdx_report_data
from node.tickets.ticket_file import class_name


def describe_ticket(
    ticket: Ticket,
    *,
    peer_id: PeerId | None = None,
    network_id: Digest | None = None,
    start_ms: int | None = None,
) -> dict[str, Any]:
    """The ticket's fields; ``TicketRejected("format", ...)`` if its data does not decode.

    The TDX binding is checked only when ``peer_id``, ``network_id`` and ``start_ms`` are all
    given (``"binding"`` is then "matches" or "mismatch", else "not checked").
    """
    description: dict[str, Any] = {
        "class": class_name(ticket.class_id),
        "class_id": ticket.class_id.hex(),
        "size": len(ticket.data),
    }
    if ticket.class_id == JWT_CLASS:
        description.update(_describe_jwt(ticket.data))
    elif ticket.class_id == TDX_CLASS:
        statement = (peer_id, network_id, start_ms)
        description.update(_describe_tdx(ticket.data, statement))
    return description


def _describe_jwt(data: bytes) -> dict[str, Any]:
    segments = data.split(b".")
    if len(segments) != 3:
        raise TicketRejected("format", f"not a compact JWT: {len(segments)} segments, not 3")
    return {
        "signature_verified": False,
        "header": _json_segment(segments[0], "header"),
        "claims": _json_segment(segments[1], "payload"),
    }


def _json_segment(segment: bytes, name: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise TicketRejected("format", f"JWT {name} is not base64url JSON: {exc}") from None
    if not isinstance(value, dict):
        raise TicketRejected("format", f"JWT {name} is not a JSON object")
    return value


def _describe_tdx(
    data: bytes, statement: tuple[PeerId | None, Digest | None, int | None]
) -> dict[str, Any]:
    ticket = decode_tdx_ticket(data)
    try:
        quote = parse_quote(ticket.quote)
    except QuoteFormatError as exc:
        raise QuoteRejected("quote", f"format.{exc.field}", exc.message) from None
    report = quote.td_report
    root_sha256 = _embedded_root_sha256(quote)
    description: dict[str, Any] = {
        "simulated": None if root_sha256 is None else root_sha256 != INTEL_ROOT_CA_SHA256,
        "root_ca_sha256": root_sha256,
        "quoted_at": ticket.quoted_at,
        "expiration": ticket.expiration,
        "quote": {
            "version": quote.version,
            "td_report": "TD1.5" if quote.is_td15 else "TD1.0",
            "size": len(ticket.quote),
        },
        "measurements": {
            "mrtd": report.mr_td.hex(),
            **{f"rtmr{i}": value.hex() for i, value in enumerate(report.rtmrs)},
        },
        "report_data": report.report_data.hex(),
        "binding": _binding(report.report_data, statement, ticket.quoted_at, ticket.expiration),
        "td_attributes": report.td_attributes.hex(),
        "debug": report.debug,
        "collateral": None if ticket.collateral is None else _collateral(ticket.collateral),
    }
    return description


def _embedded_root_sha256(quote: Quote) -> str | None:
    """SHA-256 of the last certificate of the quote's PCK chain; None without a chain."""
    signature = quote.signature_data
    if signature.certification_data_type != CERT_PCK_CHAIN or not signature.pck_chain_pem:
        return None
    try:
        root = x509.load_pem_x509_certificate(signature.pck_chain_pem[-1])
    except Exception:  # cryptography raises ValueError and others for bad certificates
        return None
    return hashlib.sha256(root.public_bytes(Encoding.DER)).hexdigest()


def _binding(
    report_data: bytes,
    statement: tuple[PeerId | None, Digest | None, int | None],
    quoted_at: int,
    expiration: int,
) -> str:
    peer_id, network_id, start_ms = statement
    if peer_id is None or network_id is None or start_ms is None:
        return "not checked"
    expected = tdx_report_data(peer_id, network_id, start_ms, quoted_at, expiration)
    return "matches" if report_data == expected else "mismatch"


def _collateral(document: bytes) -> dict[str, Any]:
    try:
        collateral = as_collateral(document)
    except AttestationError as exc:
        return {"error": str(exc)}
    return {
        "not_before": collateral.not_before,
        "not_after": collateral.not_after,
        "fmspc": collateral.fmspc,
    }


__all__ = ["describe_ticket"]
