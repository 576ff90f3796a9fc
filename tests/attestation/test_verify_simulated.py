"""verify_quote on SIMULATED quotes: the same dcap-qvl path with the simulated root CA."""

from __future__ import annotations

import os
import random

import pytest

from attestation import (
    MeasurementRecord,
    Policy,
    SimulatedPlatform,
    VerificationFailed,
    parse_quote,
    verify_quote,
)

NOW = 1_750_000_000
AT = NOW + 60
REPORT_DATA = bytes(range(64))
MRTD = bytes([0x11]) * 48
SEPT_VE_DISABLE = (1 << 28).to_bytes(8, "little")
SEED = int(os.environ.get("ATTEST_FLIP_SEED", "20250701"))


@pytest.fixture(scope="module")
def platform() -> SimulatedPlatform:
    return SimulatedPlatform.ephemeral(seed=3, measurements={"mrtd": MRTD})


@pytest.fixture(scope="module")
def collateral(platform: SimulatedPlatform) -> dict[str, str]:
    return platform.collateral(NOW)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(measurements=(MeasurementRecord.of("sim", mrtd=MRTD),), report_data=REPORT_DATA)


def rule_of(
    platform: SimulatedPlatform,
    quote: bytes,
    collateral: dict[str, str],
    policy: Policy,
    now: int = AT,
) -> str:
    with pytest.raises(VerificationFailed) as err:
        verify_quote(quote, collateral, now, policy, root_ca_der=platform.root_ca_der)
    return err.value.rule


def test_simulated_quote_verifies_against_the_simulated_root(
    platform: SimulatedPlatform, collateral: dict[str, str], policy: Policy
) -> None:
    quote = platform.quote(REPORT_DATA)
    report = verify_quote(quote, collateral, AT, policy, root_ca_der=platform.root_ca_der)
    assert report.tcb_status == "UpToDate"
    assert report.simulated is True and "not Intel" in report.root_ca
    assert report.matched_measurement_id == "sim"
    # Intel's root refuses it.
    with pytest.raises(VerificationFailed) as err:
        verify_quote(quote, collateral, AT, policy)
    assert err.value.rule == "signature_chain.root"


def test_out_of_policy_tcb_status_is_refused_and_accepted_when_allowed(
    platform: SimulatedPlatform, policy: Policy
) -> None:
    quote = platform.quote(REPORT_DATA)
    outdated = platform.collateral(NOW, tcb_status="OutOfDate", advisory_ids=["INTEL-SA-00837"])
    assert rule_of(platform, quote, outdated, policy) == "tcb_status"
    relaxed = Policy(
        allowed_tcb_statuses=frozenset({"UpToDate", "OutOfDate"}),
        measurements=policy.measurements,
    )
    report = verify_quote(quote, outdated, AT, relaxed, root_ca_der=platform.root_ca_der)
    assert (report.tcb_status, report.advisory_ids) == ("OutOfDate", ("INTEL-SA-00837",))
    blocked = Policy(
        allowed_tcb_statuses=relaxed.allowed_tcb_statuses,
        rejected_advisories=frozenset({"INTEL-SA-00837"}),
    )
    assert rule_of(platform, quote, outdated, blocked) == "advisories"
    revoked = platform.collateral(NOW, tcb_status="Revoked")
    assert rule_of(platform, quote, revoked, relaxed) == "tcb_status"


def test_revoked_pck_certificate_is_refused(platform: SimulatedPlatform, policy: Policy) -> None:
    quote = platform.quote(REPORT_DATA)
    collateral = platform.collateral(NOW, revoke_pck=True)
    assert rule_of(platform, quote, collateral, policy) == "signature_chain.revoked"


def test_debug_wrong_mrtd_and_wrong_report_data_are_named(
    platform: SimulatedPlatform, collateral: dict[str, str], policy: Policy
) -> None:
    debug = platform.quote(REPORT_DATA, td_attributes=(1 | 1 << 28).to_bytes(8, "little"))
    assert rule_of(platform, debug, collateral, policy) == "td_attributes.debug"
    wrong_mrtd = platform.quote(REPORT_DATA, mrtd=bytes(48))
    assert rule_of(platform, wrong_mrtd, collateral, policy) == "measurements.mrtd"
    wrong_rtmr2 = MeasurementRecord.of("sim", mrtd=MRTD, rtmr2=bytes(48))
    other = Policy(measurements=(wrong_rtmr2,))
    assert rule_of(platform, platform.quote(REPORT_DATA), collateral, other) == "measurements.rtmr2"
    wrong_data = platform.quote(bytes(64))
    assert rule_of(platform, wrong_data, collateral, policy) == "report_data"


def test_td_attribute_rules_on_signed_quotes(
    platform: SimulatedPlatform, collateral: dict[str, str], policy: Policy
) -> None:
    no_sept = platform.quote(REPORT_DATA, td_attributes=bytes(8))
    assert rule_of(platform, no_sept, collateral, policy) == "td_attributes.sept_ve_disable"
    reserved = platform.quote(REPORT_DATA, td_attributes=(1 << 28 | 1 << 40).to_bytes(8, "little"))
    assert rule_of(platform, reserved, collateral, policy) == "td_attributes.reserved"
    owned = platform.quote(REPORT_DATA, mrowner=bytes([1]) * 48, td_attributes=SEPT_VE_DISABLE)
    assert rule_of(platform, owned, collateral, policy) == "mr_owner"
    allowed = Policy(
        mr_owner=frozenset({bytes([1]) * 48}),
        measurements=policy.measurements,
        report_data=REPORT_DATA,
    )
    verify_quote(owned, collateral, AT, allowed, root_ca_der=platform.root_ca_der)


def test_simulated_collateral_expires(
    platform: SimulatedPlatform, collateral: dict[str, str], policy: Policy
) -> None:
    quote = platform.quote(REPORT_DATA)
    assert (
        rule_of(platform, quote, collateral, policy, now=NOW + 31 * 86400) == "collateral.expired"
    )
    assert rule_of(platform, quote, collateral, policy, now=NOW - 1) == "collateral.not_yet_valid"


def test_every_sampled_bit_flip_is_refused(
    platform: SimulatedPlatform, collateral: dict[str, str], policy: Policy
) -> None:
    """Single-bit flips across the whole quote: header and TD report (the signed region), the
    length fields, quote signature, attestation key, QE report and its signature, QE auth data
    and every byte of the PCK chain including the embedded root. Seeded; prints the seed."""
    quote = parse_quote(platform.quote(REPORT_DATA))
    raw = quote.raw
    regions = [(name, start, end) for name, start, end in quote.regions]
    regions.append(("lengths and types", 632, 636))
    regions.append(("certification header", 764, 770))
    chain_start, chain_end = quote.region("certification_data")
    third = (chain_end - chain_start) // 3
    regions += [
        (f"pck chain part {i}", chain_start + i * third, chain_start + (i + 1) * third)
        for i in range(3)
    ]
    rng = random.Random(SEED)
    accepted = []
    tried = 0
    for name, start, end in regions:
        for _ in range(30):
            pos, bit = rng.randrange(start, end), rng.randrange(8)
            mutated = bytearray(raw)
            mutated[pos] ^= 1 << bit
            tried += 1
            try:
                verify_quote(
                    bytes(mutated), collateral, AT, policy, root_ca_der=platform.root_ca_der
                )
            except VerificationFailed:
                continue
            accepted.append((name, pos, bit))
    assert tried >= 300
    assert not accepted, f"accepted flips {accepted} (ATTEST_FLIP_SEED={SEED})"


def test_fixed_td_attribute_rules_agree_with_dcap_qvl_bit_by_bit(
    platform: SimulatedPlatform, collateral: dict[str, str]
) -> None:
    """For every TDATTRIBUTES bit, `Policy.check_td` (no signature) and the full verification
    (dcap-qvl's own attribute checks) accept or refuse it alike, under the same rule name."""
    policy = Policy()
    disagreements = []
    for bit in range(64):
        attributes = (1 << 28 | 1 << bit).to_bytes(8, "little")
        quote = platform.quote(REPORT_DATA, td_attributes=attributes)
        try:
            verify_quote(quote, collateral, AT, policy, root_ca_der=platform.root_ca_der)
            full = "accepted"
        except VerificationFailed as exc:
            full = exc.rule
        try:
            policy.check_td(parse_quote(quote), now=AT)
            offline = "accepted"
        except VerificationFailed as exc:
            offline = exc.rule
        if full != offline:
            disagreements.append((bit, full, offline))
    assert not disagreements


@pytest.mark.parametrize(
    "name", ["pck_crl_issuer_chain", "tcb_info_issuer_chain", "qe_identity_issuer_chain"]
)
def test_collateral_chains_must_be_canonical_and_end_in_the_trusted_root(
    platform: SimulatedPlatform, collateral: dict[str, str], policy: Policy, name: str
) -> None:
    quote = platform.quote(REPORT_DATA)
    # dcap-qvl ignores a chain's copy of the root and whitespace: both would be free bytes.
    padded = {**collateral, name: collateral[name].replace("\n", "\n ", 1)}
    assert rule_of(platform, quote, padded, policy).startswith("collateral.chain")
    other_root = SimulatedPlatform.ephemeral(seed=4).root_ca_pem
    if isinstance(other_root, bytes):
        other_root = other_root.decode()
    foreign = {**collateral, name: collateral[name] + other_root}
    assert rule_of(platform, quote, foreign, policy) == "collateral.chain.root"
