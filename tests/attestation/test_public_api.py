"""The exported names, a light import, and no foreign exception through the public API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attestation
from attestation import (
    AttestationError,
    Collateral,
    MeasurementRecord,
    Policy,
    parse_quote,
    verify_quote,
)
from tests.attestation.vectors import COLLATERAL_V4, INSIDE_V4, QUOTE_V4

EXPORTED = {
    "INTEL_ROOT_CA_SHA256",
    "REGISTERS",
    "TCB_STATUSES",
    "TSM_REPORT_ROOT",
    "AttestationError",
    "Collateral",
    "CollateralCache",
    "CollateralError",
    "ConfigfsOps",
    "ConfigfsTsmProvider",
    "InvalidArgument",
    "MaskedValue",
    "MeasurementRecord",
    "Policy",
    "PolicyError",
    "PolicyViolation",
    "ProviderError",
    "ProviderUnavailable",
    "QeReport",
    "Quote",
    "QuoteFormatError",
    "QuoteHeader",
    "QuoteProvider",
    "SignatureData",
    "SimulatedPlatform",
    "SimulatedProvider",
    "TdReport",
    "VerificationFailed",
    "VerificationReport",
    "detect_provider",
    "fetch_collateral",
    "parse_quote",
    "verify_quote",
}


def test_exported_names_are_pinned_and_resolve() -> None:
    assert set(attestation.__all__) >= EXPORTED
    for name in attestation.__all__:
        assert getattr(attestation, name) is not None, name
    with pytest.raises(AttributeError):
        attestation.no_such_name  # noqa: B018


def test_importing_the_package_does_not_load_dcap_qvl_or_node() -> None:
    code = "import sys, attestation; print('dcap_qvl' in sys.modules, 'node' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.stdout.split() == ["False", "False"], out.stderr


GOOD_COLLATERAL = Collateral.from_json(COLLATERAL_V4)
BAD_VALUES: list[Any] = [None, 0, -1, 1.5, "", "text", b"", b"\x00" * 10, [], {}, object()]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_verify_quote_bad_arguments_raise_only_attestation_errors(value: Any) -> None:
    calls: list[Callable[[], object]] = [
        lambda: verify_quote(value, GOOD_COLLATERAL, INSIDE_V4, Policy()),
        lambda: verify_quote(QUOTE_V4, value, INSIDE_V4, Policy()),
        lambda: verify_quote(QUOTE_V4, GOOD_COLLATERAL, value, Policy()),
        lambda: verify_quote(QUOTE_V4, GOOD_COLLATERAL, INSIDE_V4, value),
        lambda: verify_quote(QUOTE_V4, GOOD_COLLATERAL, INSIDE_V4, Policy(), root_ca_der=value),
        lambda: verify_quote(QUOTE_V4, GOOD_COLLATERAL, INSIDE_V4, Policy(), quote_time=value),
    ]
    for call in calls:
        try:
            call()
        except AttestationError:
            pass


@pytest.mark.parametrize("value", BAD_VALUES)
def test_parsers_raise_only_attestation_errors(value: Any) -> None:
    for call in (
        lambda: parse_quote(value),
        lambda: Collateral.from_json(value),
        lambda: Policy.from_json(value),
        lambda: MeasurementRecord.registers_from_document(value),
    ):
        try:
            call()
        except AttestationError:
            pass


def test_naive_datetime_and_bool_time_are_refused() -> None:
    for when in (datetime(2025, 7, 1), True):
        with pytest.raises(attestation.InvalidArgument):
            verify_quote(QUOTE_V4, GOOD_COLLATERAL, when, Policy())


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 5005))
def test_spliced_quotes_only_fail_verification(chunk: bytes, at: int) -> None:
    raw = QUOTE_V4[:at] + chunk + QUOTE_V4[at + len(chunk) :]
    try:
        verify_quote(raw, GOOD_COLLATERAL, INSIDE_V4, Policy(measurements=None))
    except attestation.VerificationFailed:
        pass
