"""The simulated TDX platform's quotes and collateral, checked by dcap-qvl itself."""

from __future__ import annotations

import json
from pathlib import Path

import dcap_qvl
import pytest
from cryptography import x509

from attestation.errors import AttestationError, InvalidArgument
from attestation.simulated import (
    SIMULATED,
    TCB_STATUSES,
    SimulatedInputError,
    SimulatedPlatform,
    TdReportFields,
)
from attestation.simulated._der import SGX_EXTENSION_OID, sgx_extension

DATA = Path(__file__).parent.parent / "data"
NOW = 1_750_000_000  # 2025-06-15: any time works, the collateral is issued at NOW
DAY = 86400
REPORT_DATA = bytes(range(64))
SEPT_VE_DISABLE = 1 << 28


@pytest.fixture(scope="module")
def platform() -> SimulatedPlatform:
    return SimulatedPlatform.ephemeral(seed=1)


@pytest.fixture(scope="module")
def collateral(platform: SimulatedPlatform) -> dcap_qvl.QuoteCollateralV3:
    return dcap_qvl.QuoteCollateralV3.from_json(platform.collateral_json(NOW))


def verify(
    platform: SimulatedPlatform,
    quote: bytes,
    collateral: dcap_qvl.QuoteCollateralV3,
    now: int = NOW,
) -> dcap_qvl.VerifiedReport:
    return dcap_qvl.verify_with_root_ca(quote, collateral, platform.root_ca_der, now)


def with_status(platform: SimulatedPlatform, **options: object) -> dcap_qvl.QuoteCollateralV3:
    return dcap_qvl.QuoteCollateralV3.from_json(platform.collateral_json(NOW, **options))  # type: ignore[arg-type]


def test_quote_verifies_up_to_date_through_dcap_qvl(
    platform: SimulatedPlatform, collateral: dcap_qvl.QuoteCollateralV3
) -> None:
    report = verify(platform, platform.quote(REPORT_DATA), collateral, NOW + DAY)
    assert report.status == "UpToDate"
    assert report.advisory_ids == []
    assert report.ppid == platform.ppid
    body = json.loads(report.to_json())["report"]["TD10"]
    assert bytes.fromhex(body["report_data"]) == REPORT_DATA


@pytest.mark.parametrize("status", [s for s in TCB_STATUSES if s not in ("UpToDate", "Revoked")])
def test_tcb_status_and_advisories_of_the_collateral_are_reported(
    platform: SimulatedPlatform, status: str
) -> None:
    collateral = with_status(platform, tcb_status=status, advisory_ids=["INTEL-SA-00999"])
    report = verify(platform, platform.quote(REPORT_DATA), collateral)
    assert (report.status, report.advisory_ids) == (status, ["INTEL-SA-00999"])


def test_out_of_date_quoting_enclave_makes_the_quote_out_of_date(
    platform: SimulatedPlatform,
) -> None:
    report = verify(
        platform, platform.quote(REPORT_DATA), with_status(platform, qe_tcb_status="OutOfDate")
    )
    assert report.status == "OutOfDate"


def test_older_tdx_module_lands_on_the_out_of_date_floor(
    platform: SimulatedPlatform, collateral: dcap_qvl.QuoteCollateralV3
) -> None:
    svn = bytearray(platform.td_defaults.tee_tcb_svn)
    svn[0] -= 1
    assert (
        verify(platform, platform.quote(REPORT_DATA, tee_tcb_svn=bytes(svn)), collateral).status
        == "OutOfDate"
    )


def test_revoked_tcb_level_and_revoked_pck_certificate_are_rejected(
    platform: SimulatedPlatform,
) -> None:
    quote = platform.quote(REPORT_DATA)
    with pytest.raises(ValueError, match="Revoked"):
        verify(platform, quote, with_status(platform, tcb_status="Revoked"))
    with pytest.raises(ValueError, match="CertRevoked"):
        verify(platform, quote, with_status(platform, revoke_pck=True))


def test_collateral_verifies_only_inside_its_window(
    platform: SimulatedPlatform, collateral: dcap_qvl.QuoteCollateralV3
) -> None:
    quote = platform.quote(REPORT_DATA)
    assert verify(platform, quote, collateral, NOW).status == "UpToDate"
    assert verify(platform, quote, collateral, NOW + 30 * DAY - 1).status == "UpToDate"
    for outside in (NOW - 1, NOW + 30 * DAY, NOW + 365 * DAY):
        with pytest.raises(ValueError):
            verify(platform, quote, collateral, outside)
    short = with_status(platform, validity_days=1)
    with pytest.raises(ValueError):
        verify(platform, quote, short, NOW + DAY)


def test_intel_root_rejects_simulated_quotes(
    platform: SimulatedPlatform, collateral: dcap_qvl.QuoteCollateralV3
) -> None:
    quote = platform.quote(REPORT_DATA)
    with pytest.raises(ValueError):
        dcap_qvl.verify(quote, collateral, NOW)
    # Nor does Intel's own collateral make it pass, at a time that collateral is valid.
    intel = dcap_qvl.QuoteCollateralV3.from_json(
        (DATA / "dcap-qvl_tdx_quote_collateral.json").read_text()
    )
    real_now = 1_751_000_000  # inside the real collateral's window
    assert dcap_qvl.verify((DATA / "dcap-qvl_tdx_quote.bin").read_bytes(), intel, real_now)
    with pytest.raises(ValueError):
        dcap_qvl.verify(quote, intel, real_now)


def test_another_platform_root_rejects_the_quote(
    platform: SimulatedPlatform, collateral: dcap_qvl.QuoteCollateralV3
) -> None:
    other = SimulatedPlatform.ephemeral(seed=2)
    quote = platform.quote(REPORT_DATA)
    with pytest.raises(ValueError):
        dcap_qvl.verify_with_root_ca(quote, collateral, other.root_ca_der, NOW)
    other_collateral = dcap_qvl.QuoteCollateralV3.from_json(other.collateral_json(NOW))
    with pytest.raises(ValueError):
        dcap_qvl.verify_with_root_ca(quote, other_collateral, other.root_ca_der, NOW)


def test_debug_td_and_missing_sept_ve_disable_are_rejected_by_dcap_qvl(
    platform: SimulatedPlatform, collateral: dcap_qvl.QuoteCollateralV3
) -> None:
    debug = (SEPT_VE_DISABLE | 1).to_bytes(8, "little")
    with pytest.raises(ValueError, match="Debug"):
        verify(platform, platform.quote(REPORT_DATA, td_attributes=debug), collateral)
    with pytest.raises(ValueError, match="SEPT_VE_DISABLE"):
        verify(platform, platform.quote(REPORT_DATA, td_attributes=bytes(8)), collateral)


def test_parse_quote_gives_back_the_chosen_fields(platform: SimulatedPlatform) -> None:
    mrtd = b"\x01" * 48
    rtmrs = [bytes([0x10 + i]) * 48 for i in range(4)]
    owner = b"\x22" * 48
    quote = platform.quote(REPORT_DATA, mrtd=mrtd, rtmrs=rtmrs, mrowner=owner)
    parsed = dcap_qvl.parse_quote(quote)
    header = parsed.header
    assert (header.version, header.attestation_key_type, header.tee_type) == (4, 2, 0x81)
    assert header.qe_vendor_id == bytes.fromhex("939A7233F79C4CA9940A0DB3957F0607")
    report = parsed.report
    assert report.mr_td == mrtd
    assert [report.rt_mr0, report.rt_mr1, report.rt_mr2, report.rt_mr3] == rtmrs
    assert report.mr_owner == owner
    assert report.report_data == REPORT_DATA
    assert report.td_attributes == SEPT_VE_DISABLE.to_bytes(8, "little")
    assert report.mr_config_id == report.mr_owner_config == bytes(48)
    assert parsed.fmspc() == platform.fmspc.hex().upper()
    assert parsed.ca() == "platform"
    pck = parsed.pck_extension()
    assert (pck.fmspc, pck.ppid, pck.sgx_type) == (platform.fmspc, platform.ppid, 1)


def test_measurements_set_the_defaults_of_get_quote() -> None:
    mrtd, rtmr1 = b"\xaa" * 48, b"\xbb" * 48
    platform = SimulatedPlatform.ephemeral(seed=3, measurements={"mrtd": mrtd, "rtmr1": rtmr1})
    report = dcap_qvl.parse_quote(platform.get_quote(REPORT_DATA)).report
    assert (report.mr_td, report.rt_mr1, report.rt_mr0) == (mrtd, rtmr1, TdReportFields().rtmr0)
    collateral = dcap_qvl.QuoteCollateralV3.from_json(platform.collateral_json(NOW))
    assert verify(platform, platform.get_quote(REPORT_DATA), collateral).status == "UpToDate"


def test_seeded_platforms_are_reproducible_byte_for_byte() -> None:
    first, again = SimulatedPlatform.ephemeral(seed=7), SimulatedPlatform.ephemeral(seed=7)
    assert first.root_ca_der == again.root_ca_der
    assert first.quote(REPORT_DATA) == again.quote(REPORT_DATA)
    assert first.collateral(NOW) == again.collateral(NOW)
    assert SimulatedPlatform.ephemeral(seed=8).root_ca_der != first.root_ca_der
    assert SimulatedPlatform.ephemeral().root_ca_der != SimulatedPlatform.ephemeral().root_ca_der


def test_everything_it_makes_is_labelled_simulated(platform: SimulatedPlatform) -> None:
    assert SIMULATED is True and platform.SIMULATED is True
    assert "simulated" in platform.name
    assert "SIMULATED" in repr(platform)
    certs = x509.load_pem_x509_certificates(platform.pck_chain_pem)
    assert len(certs) == 3
    for cert in certs:
        assert "simulated" in cert.subject.rfc4514_string().lower()
    assert x509.load_der_x509_certificate(platform.root_ca_der) == certs[2]


def test_sgx_extension_encoding_matches_a_real_pck_certificate() -> None:
    raw = (DATA / "dcap-qvl_tdx_quote.bin").read_bytes()
    leaf = x509.load_pem_x509_certificates(raw[raw.index(b"-----BEGIN") :])[0]
    real = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSION_OID))
    pck = dcap_qvl.parse_quote(raw).pck_extension()
    encoded = sgx_extension(
        ppid=pck.ppid,
        cpu_svn=pck.cpu_svn,
        pce_svn=pck.pce_svn,
        pce_id=pck.pce_id,
        fmspc=pck.fmspc,
        sgx_type=pck.sgx_type,
        platform_instance_id=pck.platform_instance_id,
        dynamic_platform=True,
        cached_keys=True,
        smt_enabled=True,
    )
    assert encoded == real.value.value  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: p.quote(bytes(63)), "report_data"),
        (lambda p: p.quote(REPORT_DATA, mrtd=bytes(32)), "mrtd"),
        (lambda p: p.quote(REPORT_DATA, xfam="00" * 8), "xfam"),
        (lambda p: p.quote(REPORT_DATA, rtmrs=[bytes(48)] * 3), "rtmrs"),
        (lambda p: p.quote(REPORT_DATA, rtmrs=[bytes(48)] * 4, rtmr0=bytes(48)), "rtmrs"),
        (lambda p: p.collateral(NOW, tcb_status="Fine"), "tcb_status"),
        (lambda p: p.collateral(NOW, qe_tcb_status="uptodate"), "qe_tcb_status"),
        (lambda p: p.collateral(NOW, validity_days=0), "validity_days"),
        (lambda p: p.collateral(NOW, advisory_ids="INTEL-SA-1"), "advisory_ids"),
        (lambda p: p.collateral(-1), "now"),
        (lambda p: SimulatedPlatform.ephemeral(1, measurements={"rtmr4": bytes(48)}), "rtmr4"),
    ],
)
def test_bad_arguments_name_the_field(
    platform: SimulatedPlatform, call: object, field: str
) -> None:
    with pytest.raises(SimulatedInputError, match=field) as caught:
        call(platform)  # type: ignore[operator]
    assert isinstance(caught.value, InvalidArgument) and isinstance(caught.value, AttestationError)
