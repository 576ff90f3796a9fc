"""Quote verification: dcap-qvl for the signature chain and TCB status, then our policy.

Order of checks, each a named rule (``VerificationFailed.rule``)::

    quote_format             the bytes parse as a TDX v4/v5 quote
    collateral.*             collateral parses and is inside its validity window at ``now``
    signature_chain.*        the quote's PCK chain is canonical PEM ending in the trusted root
    collateral.chain.*       so are the collateral's issuer chains
    (dcap-qvl)               root -> TCB info/QE identity signatures -> PCK chain and CRLs ->
                             QE report signature and binding -> quote signature -> TCB level
    (policy)                 tcb_status, advisories, td_attributes.*, xfam, mr_config_id,
                             mr_owner, mr_owner_config, measurements.*, report_data, freshness.*

The canonical-chain check exists because dcap-qvl verifies the PCK leaf and intermediate against
its own trusted root and ignores the copy of the root embedded in the quote; without it, bytes
of that copy (and PEM whitespace) could change without the quote being refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

import dcap_qvl
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.collateral import Collateral, as_collateral
from attestation.errors import (
    CollateralError,
    InvalidArgument,
    QuoteFormatError,
    VerificationFailed,
)
from attestation.policy import Policy
from attestation.quote import CERT_PCK_CHAIN, Quote, parse_quote

INTEL_ROOT_CA_SHA256: Final = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
INTEL_ROOT_CA_NAME: Final = "Intel SGX Root CA"

# dcap-qvl reports every failure as ValueError text; these substrings map it to our rule names.
_DCAP_RULES: Final = (
    ("CertRevoked", "signature_chain.revoked"),
    ("issue date is in the future", "collateral.not_yet_valid"),
    ("CertNotValidYet", "signature_chain.not_yet_valid"),
    ("TCBInfo expired", "collateral.expired"),
    ("QE Identity expired", "collateral.expired"),
    ("CrlExpired", "collateral.expired"),
    ("revocation list expired", "collateral.expired"),
    ("Collateral expired", "collateral.expired"),
    ("certificate expired", "signature_chain.expired"),
    ("Signature is invalid for tcb_info", "collateral.signature"),
    ("Signature is invalid for qe_identity", "collateral.signature"),
    ("Fmspc mismatch", "collateral.mismatch"),
    ("TCB info in the collateral", "collateral.mismatch"),
    ("Unsupported QE Identity id", "collateral.mismatch"),
    ("Debug mode", "td_attributes.debug"),
    ("SEPT_VE_DISABLE", "td_attributes.sept_ve_disable"),
    ("Reserved bits in TD attributes", "td_attributes.reserved"),
    ("TD profiling", "td_attributes.profiling"),
    ("SERVTD_EXT", "td_attributes.servtd_ext"),
    ("TD migration", "td_attributes.migratable"),
    ("MR service TD", "mr_service_td"),
    ("mr service td", "mr_service_td"),
    ("Revoked", "tcb_status"),
    ("No matching TCB level", "tcb_status"),
    ("TCB level mismatch", "tcb_status"),
    ("current TDX TCB", "tcb_status"),
    ("TDX module", "tdx_module"),
    ("QE report hash mismatch", "qe_report.binding"),
    ("QE auth data", "qe_report.binding"),
    ("Signature is invalid for qe_report", "qe_report.signature"),
    ("QE MRSIGNER", "qe_identity"),
    ("QE ISVPRODID", "qe_identity"),
    ("QE ATTRIBUTES", "qe_identity"),
    ("QE MISCSELECT", "qe_identity"),
    ("QE Identity", "qe_identity"),
    ("ISV enclave report signature is invalid", "quote_signature"),
    ("Unknown QE vendor ID", "quote_header"),
    ("certificate", "signature_chain"),
    ("Certificate", "signature_chain"),
    ("root ca", "signature_chain"),
    ("root CA", "signature_chain"),
)


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """What was verified and measured; ``simulated`` is True unless rooted at Intel's CA."""

    tcb_status: str
    advisory_ids: tuple[str, ...]
    quote_version: int
    td_report_version: str
    mrtd: str
    rtmr0: str
    rtmr1: str
    rtmr2: str
    rtmr3: str
    report_data: str
    td_attributes: str
    xfam: str
    mr_config_id: str
    mr_owner: str
    mr_owner_config: str
    mr_seam: str
    tee_tcb_svn: str
    debug: bool
    matched_measurement_id: str | None
    simulated: bool
    root_ca: str
    fmspc: str
    verified_at: int
    collateral_expires_at: int

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["advisory_ids"] = list(self.advisory_ids)
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def unix_seconds(value: int | datetime, what: str) -> int:
    """Seconds since the epoch from an int or a timezone-aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgument(f"{what}: naive datetime; give a timezone (e.g. UTC)")
        return int(value.timestamp())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidArgument(f"{what}: expected int seconds or datetime, got {type(value).__name__}")


def verify_quote(
    quote: bytes | Quote,
    collateral: Collateral | dcap_qvl.QuoteCollateralV3 | str | bytes | Mapping[str, Any],
    now: int | datetime,
    policy: Policy,
    *,
    root_ca_der: bytes | None = None,
    quote_time: int | datetime | None = None,
) -> VerificationReport:
    """Verify ``quote`` against ``collateral`` at ``now``, then apply ``policy``.

    ``root_ca_der`` replaces Intel's root (e.g. the simulated platform's); the report is then
    flagged ``simulated``. ``quote_time`` (when the quote was produced) feeds the policy's
    maximum quote age. Raises ``VerificationFailed`` (``PolicyViolation`` for policy rules)
    whose ``rule`` names the failed check; ``InvalidArgument`` for unusable arguments.
    """
    now_s = unix_seconds(now, "now")
    quote_s = None if quote_time is None else unix_seconds(quote_time, "quote_time")
    if not isinstance(policy, Policy):
        raise InvalidArgument(f"policy: expected Policy, got {type(policy).__name__}")
    try:
        parsed = quote if isinstance(quote, Quote) else parse_quote(quote)
    except QuoteFormatError as exc:
        raise VerificationFailed("quote_format", str(exc)) from exc
    try:
        material = as_collateral(collateral)
    except CollateralError as exc:
        raise VerificationFailed("collateral.format", str(exc)) from exc
    if now_s < material.not_before:
        raise VerificationFailed(
            "collateral.not_yet_valid", f"collateral is valid from {_iso(material.not_before)}"
        )
    if now_s >= material.not_after:
        raise VerificationFailed(
            "collateral.expired", f"collateral expired at {_iso(material.not_after)}"
        )

    root_fingerprint, root_name = _root_identity(root_ca_der)
    _check_certification_chain(parsed, root_fingerprint, root_name)
    _check_collateral_chains(material.dcap, root_fingerprint, root_name)
    try:
        if root_ca_der is None:
            verified = dcap_qvl.verify(parsed.raw, material.dcap, now_s)
        else:
            verified = dcap_qvl.verify_with_root_ca(parsed.raw, material.dcap, root_ca_der, now_s)
        status = str(verified.status)
        advisories = tuple(str(a) for a in verified.advisory_ids)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # dcap-qvl raises ValueError, and pyo3 panics as BaseException
        message = " ".join(str(exc).split())
        raise VerificationFailed(_dcap_rule(message), message) from None

    matched = policy.check(
        parsed, tcb_status=status, advisory_ids=advisories, now=now_s, quote_time=quote_s
    )
    report = parsed.td_report
    return VerificationReport(
        tcb_status=status,
        advisory_ids=advisories,
        quote_version=parsed.version,
        td_report_version="TD1.5" if parsed.is_td15 else "TD1.0",
        mrtd=report.mr_td.hex(),
        rtmr0=report.rtmr0.hex(),
        rtmr1=report.rtmr1.hex(),
        rtmr2=report.rtmr2.hex(),
        rtmr3=report.rtmr3.hex(),
        report_data=report.report_data.hex(),
        td_attributes=report.td_attributes.hex(),
        xfam=report.xfam.hex(),
        mr_config_id=report.mr_config_id.hex(),
        mr_owner=report.mr_owner.hex(),
        mr_owner_config=report.mr_owner_config.hex(),
        mr_seam=report.mr_seam.hex(),
        tee_tcb_svn=report.tee_tcb_svn.hex(),
        debug=report.debug,
        matched_measurement_id=matched,
        simulated=root_fingerprint != INTEL_ROOT_CA_SHA256,
        root_ca=root_name,
        fmspc=material.fmspc,
        verified_at=now_s,
        collateral_expires_at=material.not_after,
    )


def _root_identity(root_ca_der: bytes | None) -> tuple[str, str]:
    if root_ca_der is None:
        return INTEL_ROOT_CA_SHA256, INTEL_ROOT_CA_NAME
    if not isinstance(root_ca_der, bytes):
        raise InvalidArgument(f"root_ca_der: expected bytes, got {type(root_ca_der).__name__}")
    try:
        cert = x509.load_der_x509_certificate(root_ca_der)
    except Exception as exc:  # cryptography raises ValueError, InvalidVersion and others
        raise InvalidArgument(f"root_ca_der is not a DER certificate: {exc}") from None
    fingerprint = hashlib.sha256(root_ca_der).hexdigest()
    if fingerprint == INTEL_ROOT_CA_SHA256:
        return fingerprint, INTEL_ROOT_CA_NAME
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else cert.subject.rfc4514_string()
    return fingerprint, f"{common_name} (not Intel; sha256 {fingerprint[:16]})"


def _check_certification_chain(quote: Quote, root_fingerprint: str, root_name: str) -> None:
    data = quote.signature_data
    if data.certification_data_type != CERT_PCK_CHAIN:
        return  # no chain in the quote: dcap-qvl takes the PCK chain from the collateral
    # Real quotes end the PEM text with an optional single NUL terminator.
    text = data.certification_data
    text = text[:-1] if text.endswith(b"\x00") else text
    _check_pem_chain(text, "PCK chain", "signature_chain", root_fingerprint, root_name)


def _check_collateral_chains(dcap: Any, root_fingerprint: str, root_name: str) -> None:
    for name in ("pck_crl_issuer_chain", "tcb_info_issuer_chain", "qe_identity_issuer_chain"):
        text = getattr(dcap, name).encode()
        _check_pem_chain(text, name, "collateral.chain", root_fingerprint, root_name)


def _check_pem_chain(
    text: bytes, what: str, rule: str, root_fingerprint: str, root_name: str
) -> None:
    """A chain must be canonical PEM ending in the trusted root.

    dcap-qvl verifies signatures up to the root it is given and ignores both the chain's own
    copy of the root and bytes outside the DER; we refuse both so no byte of a chain is free.
    """
    try:
        certs = x509.load_pem_x509_certificates(text)
    except Exception as exc:  # cryptography raises ValueError, InvalidVersion and others
        raise VerificationFailed(rule, f"{what} does not decode: {exc}") from None
    canonical = b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)
    if canonical != text and canonical != text + b"\n":
        raise VerificationFailed(
            f"{rule}.encoding", f"{what} is not canonical PEM (bytes outside the DER)"
        )
    if len(certs) < 2:
        raise VerificationFailed(rule, f"{what} holds fewer than two certificates")
    embedded = hashlib.sha256(certs[-1].public_bytes(Encoding.DER)).hexdigest()
    if embedded != root_fingerprint:
        raise VerificationFailed(
            f"{rule}.root",
            f"{what} ends in a root with sha256 {embedded[:16]}, not the trusted {root_name}",
        )


def _dcap_rule(message: str) -> str:
    for needle, rule in _DCAP_RULES:
        if needle in message:
            return rule
    return "dcap"


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()
