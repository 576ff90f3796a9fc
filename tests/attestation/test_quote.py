"""The quote parser: real v4/v5 vectors agree with dcap-qvl; malformed input names the field."""

from __future__ import annotations

import struct

import dcap_qvl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation import QuoteFormatError, parse_quote
from attestation.quote import BODY_TD10, BODY_TD15
from tests.attestation.vectors import (
    QUOTE_EXTRA_BYTES,
    QUOTE_GCP_PADDED,
    QUOTE_OUTDATED,
    QUOTE_SGX,
    QUOTE_V4,
    QUOTE_V5,
    V4_MRTD,
    V4_REPORT_DATA,
    V4_RTMR1,
)

TD10_FIELDS = {
    "tee_tcb_svn": "tee_tcb_svn",
    "mr_seam": "mr_seam",
    "mr_signer_seam": "mr_signer_seam",
    "seam_attributes": "seam_attributes",
    "td_attributes": "td_attributes",
    "xfam": "xfam",
    "mr_td": "mr_td",
    "mr_config_id": "mr_config_id",
    "mr_owner": "mr_owner",
    "mr_owner_config": "mr_owner_config",
    "rtmr0": "rt_mr0",
    "rtmr1": "rt_mr1",
    "rtmr2": "rt_mr2",
    "rtmr3": "rt_mr3",
    "report_data": "report_data",
}


def assert_matches_dcap(raw: bytes) -> None:
    ours = parse_quote(raw)
    theirs = dcap_qvl.parse_quote(raw)
    for field, dcap_field in TD10_FIELDS.items():
        assert getattr(ours.td_report, field) == getattr(theirs.report, dcap_field), field
    header = theirs.header
    assert ours.header.version == header.version
    assert ours.header.tee_type == header.tee_type
    assert ours.header.qe_svn == header.qe_svn
    assert ours.header.pce_svn == header.pce_svn
    assert ours.header.qe_vendor_id == header.qe_vendor_id
    assert ours.header.user_data == header.user_data
    assert b"".join(ours.signature_data.pck_chain_pem) == theirs.cert_chain_pem_bytes()
    if ours.is_td15:
        assert ours.td_report.tee_tcb_svn2 == theirs.report.tee_tcb_svn2
        assert ours.td_report.mr_service_td == theirs.report.mr_service_td


def test_real_v4_quote_parses_to_the_values_dcap_qvl_reports() -> None:
    quote = parse_quote(QUOTE_V4)
    assert quote.version == 4
    assert quote.body_type == BODY_TD10
    assert quote.td_report.mr_td == V4_MRTD
    assert quote.td_report.rtmr1 == V4_RTMR1
    assert quote.td_report.report_data == V4_REPORT_DATA
    assert quote.td_report.tee_tcb_svn2 is None
    assert quote.signed_range == (0, 632)
    assert quote.region("td_report") == (48, 632)
    assert quote.td_report.sept_ve_disable and not quote.td_report.debug
    assert len(quote.signature_data.pck_chain_pem) == 3
    assert quote.signature_data.qe_report.isv_prod_id == 2
    # 70 zero bytes of padding follow the signature data in this vector.
    assert (len(quote.raw), quote.padding) == (4936, 70)
    assert_matches_dcap(QUOTE_V4)


@pytest.mark.parametrize("raw", [QUOTE_V5, QUOTE_OUTDATED], ids=["v5-sample", "v5-outdated"])
def test_v5_quotes_parse_with_td15_fields(raw: bytes) -> None:
    quote = parse_quote(raw)
    assert quote.version == 5
    assert quote.body_type == BODY_TD15 and quote.is_td15
    assert quote.td_report.tee_tcb_svn2 is not None and len(quote.td_report.tee_tcb_svn2) == 16
    assert quote.td_report.mr_service_td is not None and len(quote.td_report.mr_service_td) == 48
    assert quote.region("td_report") == (54, 54 + 648)
    assert quote.signed_range == (0, 702)
    assert_matches_dcap(raw)


def test_zero_padded_gcp_quote_parses_and_padding_is_dropped() -> None:
    quote = parse_quote(QUOTE_GCP_PADDED)
    assert len(QUOTE_GCP_PADDED) == 8000
    assert quote.padding == 8000 - len(quote.raw) == 3065
    unpadded = parse_quote(quote.raw)
    assert unpadded.padding == 0
    assert (unpadded.td_report, unpadded.signature_data) == (quote.td_report, quote.signature_data)
    assert_matches_dcap(QUOTE_GCP_PADDED)


def test_non_zero_bytes_after_the_signature_data_are_refused() -> None:
    # go-tdx-guest appended "extra bytes(only for testing purpose)": nothing signs them.
    with pytest.raises(QuoteFormatError) as err:
        parse_quote(QUOTE_EXTRA_BYTES)
    assert err.value.field == "trailing_data"


def test_sgx_quote_is_refused_as_wrong_tee_type() -> None:
    with pytest.raises(QuoteFormatError) as err:
        parse_quote(QUOTE_SGX)
    assert err.value.field == "header.tee_type"
    assert "not a TDX quote" in str(err.value)


def patched(raw: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(raw)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


V4 = parse_quote(QUOTE_V4).raw
SIG_LEN_AT = 632
CERT_SIZE_AT = 636 + 128 + 2
AUTH_SIZE_AT = 1218
INNER_TYPE_AT = 1252
INNER_SIZE_AT = 1254


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "header.version"),
        (V4[:47], "header.user_data"),
        (V4[:300], "td_report.mr_owner"),
        (V4[:633], "signature_data_length"),
        (V4[:2000], "signature_data"),
        (patched(V4, 0, "<H", 3), "header.version"),
        (patched(V4, 2, "<H", 3), "header.attestation_key_type"),
        (patched(V4, SIG_LEN_AT, "<I", 4300 + 1), "signature_data"),
        (patched(V4, SIG_LEN_AT, "<I", 100), "signature_data.attestation_key"),
        (patched(V4, SIG_LEN_AT, "<I", 0xFFFFFFFF), "signature_data"),
        (patched(V4, 636 + 128, "<H", 5), "signature_data.certification_type"),
        (patched(V4, CERT_SIZE_AT, "<I", 4165), "signature_data.certification_size"),
        (patched(V4, AUTH_SIZE_AT, "<H", 0xFFFF), "qe_auth_data"),
        (patched(V4, AUTH_SIZE_AT, "<H", 31), "certification_data.type"),
        (patched(V4, INNER_TYPE_AT, "<H", 99), "certification_data.type"),
        (patched(V4, INNER_SIZE_AT, "<I", 3677), "certification_data.size"),
        (patched(V4, INNER_SIZE_AT, "<I", 1 << 31), "certification_data.size"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_malformed_quotes_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(QuoteFormatError) as err:
        parse_quote(raw)
    assert err.value.field == field


def test_lying_v5_body_fields_are_named() -> None:
    v5 = parse_quote(QUOTE_V5).raw
    with pytest.raises(QuoteFormatError) as err:
        parse_quote(patched(v5, 48, "<H", 4))
    assert err.value.field == "body_type"
    with pytest.raises(QuoteFormatError) as err:
        parse_quote(patched(v5, 50, "<I", 584))
    assert err.value.field == "body_size"


def test_pck_chain_without_a_pem_certificate_is_refused() -> None:
    start, end = parse_quote(V4).region("certification_data")
    blank = V4[:start] + b"x" * (end - start)
    with pytest.raises(QuoteFormatError) as err:
        parse_quote(blank)
    assert err.value.field == "certification_data"


@pytest.mark.parametrize("value", ["text", None, 4, [1, 2]])
def test_non_bytes_input_is_a_format_error(value: object) -> None:
    with pytest.raises(QuoteFormatError):
        parse_quote(value)  # type: ignore[arg-type]


def test_debug_and_sept_ve_disable_bits_are_read_little_endian() -> None:
    raw = bytearray(V4)
    raw[48 + 120] |= 0x01  # TDATTRIBUTES byte 0, bit 0: DEBUG
    raw[48 + 120 + 3] &= ~0x10  # byte 3, bit 4 = bit 28: SEPT_VE_DISABLE
    report = parse_quote(bytes(raw)).td_report
    assert report.debug and not report.sept_ve_disable


# -- fuzzing: only QuoteFormatError may escape ---------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = [V4, parse_quote(QUOTE_V5).raw]
LENGTH_FIELDS = [
    (SIG_LEN_AT, "<I"),
    (CERT_SIZE_AT, "<I"),
    (AUTH_SIZE_AT, "<H"),
    (INNER_SIZE_AT, "<I"),
    (0, "<H"),
]


def parse_or_format_error(raw: bytes) -> None:
    try:
        parse_quote(raw)
    except QuoteFormatError:
        pass


@FUZZ
@given(st.binary(max_size=6000))
def test_fuzz_random_bytes(raw: bytes) -> None:
    parse_or_format_error(raw)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_behind_a_valid_header(tail: bytes) -> None:
    parse_or_format_error(V4[:48] + tail)
    parse_or_format_error(SEEDS[1][:54] + tail)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    cut=st.integers(0, 5100),
    flips=st.lists(st.tuples(st.integers(0, 5100), st.integers(0, 7)), max_size=8),
)
def test_fuzz_truncations_and_bit_flips(
    seed: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    raw = bytearray(seed[:cut])
    for pos, bit in flips:
        if pos < len(raw):
            raw[pos] ^= 1 << bit
    parse_or_format_error(bytes(raw))


@FUZZ
@given(
    field=st.sampled_from(LENGTH_FIELDS),
    value=st.integers(0, 0xFFFFFFFF),
    extra=st.binary(max_size=64),
)
def test_fuzz_length_fields(field: tuple[int, str], value: int, extra: bytes) -> None:
    offset, fmt = field
    value &= 0xFFFF if fmt == "<H" else 0xFFFFFFFF
    parse_or_format_error(patched(V4, offset, fmt, value) + extra)
