"""verify_quote on real Intel-signed quotes and collateral at fixed times."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation import (
    TCB_STATUSES,
    Collateral,
    InvalidArgument,
    MeasurementRecord,
    Policy,
    PolicyViolation,
    VerificationFailed,
    parse_quote,
    verify_quote,
)
from tests.attestation.vectors import (
    COLLATERAL_OUTDATED,
    COLLATERAL_V4,
    INSIDE_OUTDATED,
    INSIDE_V4,
    QUOTE_OUTDATED,
    QUOTE_SGX,
    QUOTE_V4,
    V4_MRTD,
    V4_NOT_AFTER,
    V4_NOT_BEFORE,
    V4_REPORT_DATA,
    V4_RTMR1,
)

COLLATERAL = Collateral.from_json(COLLATERAL_V4)
QUOTE = parse_quote(QUOTE_V4)
REAL_RECORD = MeasurementRecord.of(
    "dcap-qvl-sample",
    mrtd=V4_MRTD,
    rtmr0=QUOTE.td_report.rtmr0,
    rtmr1=V4_RTMR1,
    rtmr2=QUOTE.td_report.rtmr2,
    rtmr3=bytes(48),
)
PINNED = Policy(measurements=(REAL_RECORD,), report_data=V4_REPORT_DATA)


def rule(quote: bytes, policy: Policy = PINNED, now: int = INSIDE_V4, **kw: object) -> str:
    with pytest.raises(VerificationFailed) as err:
        verify_quote(quote, COLLATERAL, now, policy, **kw)  # type: ignore[arg-type]
    return err.value.rule


def test_real_quote_verifies_up_to_date_inside_its_window() -> None:
    report = verify_quote(QUOTE_V4, COLLATERAL, INSIDE_V4, PINNED)
    assert report.tcb_status == "UpToDate"
    assert report.advisory_ids == ()
    assert report.matched_measurement_id == "dcap-qvl-sample"
    assert report.mrtd == V4_MRTD.hex() and report.rtmr1 == V4_RTMR1.hex()
    assert report.report_data == V4_REPORT_DATA.hex()
    assert report.simulated is False and report.root_ca == "Intel SGX Root CA"
    assert report.fmspc == "B0C06F000000"
    assert report.collateral_expires_at == V4_NOT_AFTER
    assert json.loads(report.to_json())["tcb_status"] == "UpToDate"


def test_now_may_be_an_aware_datetime_but_not_a_naive_one() -> None:
    at = datetime(2025, 7, 1, tzinfo=UTC)
    assert verify_quote(QUOTE_V4, COLLATERAL, at, PINNED).verified_at == INSIDE_V4
    with pytest.raises(InvalidArgument):
        verify_quote(QUOTE_V4, COLLATERAL, datetime(2025, 7, 1), PINNED)


def test_collateral_window_edges() -> None:
    verify_quote(QUOTE_V4, COLLATERAL, V4_NOT_BEFORE, PINNED)
    verify_quote(QUOTE_V4, COLLATERAL, V4_NOT_AFTER - 1, PINNED)
    assert rule(QUOTE_V4, now=V4_NOT_AFTER) == "collateral.expired"
    assert rule(QUOTE_V4, now=V4_NOT_BEFORE - 1) == "collateral.not_yet_valid"
    assert rule(QUOTE_V4, now=INSIDE_V4 + 365 * 86400) == "collateral.expired"


def test_dcap_qvl_expiry_errors_map_to_the_collateral_rule() -> None:
    # Pretend our window were wider: dcap-qvl's own freshness checks must name the same rule.
    wide = dataclasses.replace(COLLATERAL, not_before=0, not_after=2**40)
    for now, expected in [
        (V4_NOT_AFTER + 86400, "collateral.expired"),
        (V4_NOT_BEFORE - 86400, "collateral.not_yet_valid"),
    ]:
        with pytest.raises(VerificationFailed) as err:
            verify_quote(QUOTE_V4, wide, now, PINNED)
        assert err.value.rule == expected


def test_wrong_mrtd_and_wrong_report_data_are_named() -> None:
    other = MeasurementRecord.of("other", mrtd=bytes(48), rtmr1=V4_RTMR1)
    assert rule(QUOTE_V4, Policy(measurements=(other,))) == "measurements.mrtd"
    assert rule(QUOTE_V4, PINNED.with_report_data(bytes(64))) == "report_data"
    with pytest.raises(PolicyViolation):
        verify_quote(QUOTE_V4, COLLATERAL, INSIDE_V4, Policy(measurements=(other,)))


def test_debug_bit_breaks_the_signature_of_a_real_quote() -> None:
    raw = bytearray(QUOTE.raw)
    raw[48 + 120] |= 1
    assert rule(bytes(raw)) == "quote_signature"


def test_outdated_platform_is_refused_by_dcap_qvl_whatever_the_policy() -> None:
    # This platform's CPUSVN is below every TCB level of its collateral: dcap-qvl 0.7 returns
    # "No matching TCB level" rather than a status, so no allow-list can accept it.
    collateral = Collateral.from_json(COLLATERAL_OUTDATED)
    for policy in (Policy(), Policy(allowed_tcb_statuses=TCB_STATUSES)):
        with pytest.raises(VerificationFailed) as err:
            verify_quote(QUOTE_OUTDATED, collateral, INSIDE_OUTDATED, policy)
        assert err.value.rule == "tcb_status"
        assert "No matching TCB level" in err.value.detail


def test_mismatched_collateral_is_refused() -> None:
    collateral = Collateral.from_json(COLLATERAL_OUTDATED)
    with pytest.raises(VerificationFailed) as err:
        verify_quote(QUOTE_V4, collateral, INSIDE_OUTDATED, PINNED)
    assert err.value.rule == "collateral.mismatch"


def test_sgx_quote_is_a_format_failure() -> None:
    assert rule(QUOTE_SGX) == "quote_format"


def intel_root_der() -> bytes:
    chain = b"".join(QUOTE.signature_data.pck_chain_pem)
    return x509.load_pem_x509_certificates(chain)[-1].public_bytes(Encoding.DER)


def test_an_explicit_intel_root_is_not_flagged_simulated() -> None:
    report = verify_quote(QUOTE_V4, COLLATERAL, INSIDE_V4, PINNED, root_ca_der=intel_root_der())
    assert report.simulated is False and report.root_ca == "Intel SGX Root CA"


def test_bad_arguments_are_invalid_argument_or_named_failures() -> None:
    with pytest.raises(InvalidArgument):
        verify_quote(QUOTE_V4, COLLATERAL, INSIDE_V4, PINNED, root_ca_der=b"not a certificate")
    with pytest.raises(InvalidArgument):
        verify_quote(QUOTE_V4, COLLATERAL, "2025-07-01", PINNED)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        verify_quote(QUOTE_V4, COLLATERAL, INSIDE_V4, {"measurements": "any"})  # type: ignore[arg-type]
    with pytest.raises(VerificationFailed) as err:
        verify_quote(QUOTE_V4, "{}", INSIDE_V4, PINNED)
    assert err.value.rule == "collateral.format"


SEED = int(os.environ.get("ATTEST_FLIP_SEED", "7"))


def test_sampled_bit_flips_anywhere_in_a_real_quote_are_refused() -> None:
    rng = random.Random(SEED)
    accepted = []
    for name, start, end in QUOTE.regions:
        for _ in range(40):
            pos, bit = rng.randrange(start, end), rng.randrange(8)
            raw = bytearray(QUOTE.raw)
            raw[pos] ^= 1 << bit
            try:
                verify_quote(bytes(raw), COLLATERAL, INSIDE_V4, PINNED)
            except VerificationFailed:
                continue
            accepted.append((name, pos, bit))
    assert not accepted, f"accepted flips {accepted} (seed {SEED})"
