"""Policy files and policy rules (applied to parsed real quotes; no signature involved)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation import MaskedValue, MeasurementRecord, Policy, PolicyError, PolicyViolation
from attestation.quote import Quote, parse_quote
from tests.attestation.vectors import QUOTE_OUTDATED, QUOTE_V4, V4_MRTD, V4_REPORT_DATA, V4_RTMR1

QUOTE = parse_quote(QUOTE_V4)
NOW = 1_751_328_000
OTHER = bytes([0xAB]) * 48


def with_td(quote: Quote, **changes: bytes) -> Quote:
    return dataclasses.replace(quote, td_report=dataclasses.replace(quote.td_report, **changes))


def rule_of(policy: Policy, quote: Quote = QUOTE, status: str = "UpToDate", **kw: object) -> str:
    with pytest.raises(PolicyViolation) as err:
        policy.check(quote, tcb_status=status, now=NOW, **kw)  # type: ignore[arg-type]
    return err.value.rule


def test_default_policy_accepts_the_real_quote_up_to_date() -> None:
    assert Policy().check(QUOTE, tcb_status="UpToDate", now=NOW) is None


def test_tcb_status_allow_list() -> None:
    outdated = parse_quote(QUOTE_OUTDATED)
    assert rule_of(Policy(), outdated, status="OutOfDate") == "tcb_status"
    relaxed = Policy(allowed_tcb_statuses=frozenset({"UpToDate", "OutOfDate"}))
    assert relaxed.check(outdated, tcb_status="OutOfDate", now=NOW) is None


def test_rejected_advisories() -> None:
    policy = Policy(
        allowed_tcb_statuses=frozenset({"SWHardeningNeeded"}),
        rejected_advisories=frozenset({"INTEL-SA-00837"}),
    )
    with pytest.raises(PolicyViolation) as err:
        policy.check(
            QUOTE, tcb_status="SWHardeningNeeded", advisory_ids=["INTEL-SA-00837"], now=NOW
        )
    assert err.value.rule == "advisories"
    policy.check(QUOTE, tcb_status="SWHardeningNeeded", advisory_ids=["INTEL-SA-00615"], now=NOW)


def test_fixed_td_attribute_rules() -> None:
    debug = with_td(QUOTE, td_attributes=(1 | 1 << 28).to_bytes(8, "little"))
    assert rule_of(Policy(), debug) == "td_attributes.debug"
    assert (
        rule_of(Policy(), with_td(QUOTE, td_attributes=bytes(8))) == "td_attributes.sept_ve_disable"
    )
    for bit, expected in [
        (5, "profiling"),
        (17, "servtd_ext"),
        (29, "migratable"),
        (40, "reserved"),
    ]:
        changed = with_td(QUOTE, td_attributes=(1 << 28 | 1 << bit).to_bytes(8, "little"))
        assert rule_of(Policy(), changed) == f"td_attributes.{expected}"
    allowed_bits = 1 << 28 | 1 << 30 | 1 << 31 | 1 << 63
    allowed = with_td(QUOTE, td_attributes=allowed_bits.to_bytes(8, "little"))
    Policy().check(allowed, tcb_status="UpToDate", now=NOW)
    td15 = parse_quote(QUOTE_OUTDATED)
    Policy().check(td15, tcb_status="UpToDate", now=NOW)
    assert rule_of(Policy(), with_td(td15, mr_service_td=OTHER)) == "mr_service_td"


def test_attribute_and_xfam_masks() -> None:
    # XFAM of the real quote is e702060000000000; require AMX tile state (bits 17, 18) clear.
    amx_clear = MaskedValue(bytes(8), (0b11 << 17).to_bytes(8, "little"))
    assert rule_of(Policy(xfam=amx_clear)) == "xfam"
    avx512 = MaskedValue(bytes.fromhex("e000000000000000"), bytes.fromhex("e000000000000000"))
    Policy(xfam=avx512).check(QUOTE, tcb_status="UpToDate", now=NOW)
    exact = MaskedValue(bytes.fromhex("0000001000000000"), b"\xff" * 8)
    Policy(td_attributes=exact).check(QUOTE, tcb_status="UpToDate", now=NOW)
    other = MaskedValue(bytes.fromhex("0000001001000000"), b"\xff" * 8)
    assert rule_of(Policy(td_attributes=other)) == "td_attributes.mask"


@pytest.mark.parametrize("field", ["mr_config_id", "mr_owner", "mr_owner_config"])
def test_owner_fields_must_be_zero_unless_expected(field: str) -> None:
    changed = with_td(QUOTE, **{field: OTHER})
    assert rule_of(Policy(), changed) == field
    allowed = Policy(**{field: frozenset({bytes(48), OTHER})})  # type: ignore[arg-type]
    allowed.check(changed, tcb_status="UpToDate", now=NOW)


def test_measurement_records_match_when_all_listed_registers_match() -> None:
    real = MeasurementRecord.of("real", mrtd=V4_MRTD, rtmr1=[OTHER, V4_RTMR1])
    wrong_mrtd = MeasurementRecord.of("wrong-mrtd", mrtd=OTHER, rtmr1=V4_RTMR1)
    policy = Policy(measurements=(wrong_mrtd, real))
    assert policy.check(QUOTE, tcb_status="UpToDate", now=NOW) == "real"
    assert rule_of(Policy(measurements=(wrong_mrtd,))) == "measurements.mrtd"
    wrong_rtmr1 = MeasurementRecord.of("wrong-rtmr1", mrtd=V4_MRTD, rtmr1=OTHER)
    assert rule_of(Policy(measurements=(wrong_rtmr1,))) == "measurements.rtmr1"
    # Several misses: the closest record names the register.
    far = MeasurementRecord.of("far", mrtd=OTHER, rtmr0=OTHER, rtmr1=OTHER)
    with pytest.raises(PolicyViolation) as err:
        Policy(measurements=(far, wrong_rtmr1)).check(QUOTE, tcb_status="UpToDate", now=NOW)
    assert err.value.rule == "measurements.rtmr1"
    assert "far: mrtd, rtmr0, rtmr1 differ" in err.value.detail


def test_report_data_binding_exact_or_callable() -> None:
    assert Policy(report_data=V4_REPORT_DATA).check(QUOTE, tcb_status="UpToDate", now=NOW) is None
    assert rule_of(Policy(report_data=bytes(64))) == "report_data"
    assert rule_of(Policy().with_report_data(lambda rd: rd.startswith(b"\x00"))) == "report_data"
    Policy().with_report_data(lambda rd: rd == V4_REPORT_DATA).check(
        QUOTE, tcb_status="UpToDate", now=NOW
    )

    def broken(_rd: bytes) -> bool:
        raise RuntimeError("binding backend down")

    assert rule_of(Policy().with_report_data(broken)) == "report_data"


def test_quote_age() -> None:
    policy = Policy(max_quote_age=60)
    assert rule_of(policy) == "freshness.quote_time"
    assert rule_of(policy, quote_time=NOW + 1) == "freshness.quote_time"
    assert rule_of(policy, quote_time=NOW - 61) == "freshness.quote_age"
    policy.check(QUOTE, tcb_status="UpToDate", now=NOW, quote_time=NOW - 60)


# -- files ---------------------------------------------------------------------------------------

FULL = {
    "tcb_statuses": ["UpToDate", "SWHardeningNeeded"],
    "rejected_advisories": ["INTEL-SA-00837"],
    "allow_debug": False,
    "require_sept_ve_disable": True,
    "td_attributes": {"value": "0000001000000000", "mask": "ffffffffffffffff"},
    "xfam": {"value": "0x" + "e7" + "00" * 7, "mask": "e7" + "00" * 7},
    "mr_config_id": ["00" * 48],
    "mr_owner": ["00" * 48, "ab" * 48],
    "mr_owner_config": ["00" * 48],
    "report_data": V4_REPORT_DATA.hex(),
    "max_quote_age_seconds": 600,
    "measurements": [
        {
            "measurement_id": "real",
            "attestation_type": "dcap-tdx",
            "measurements": {
                "mrtd": {"expected_any": [V4_MRTD.hex(), OTHER.hex()]},
                "rtmr1": {"expected": V4_RTMR1.hex().upper()},
            },
        }
    ],
}


def test_full_policy_file_loads_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(FULL))
    policy = Policy.from_file(path)
    assert policy.allowed_tcb_statuses == {"UpToDate", "SWHardeningNeeded"}
    assert policy.mr_owner == {bytes(48), OTHER}
    assert policy.max_quote_age == 600
    assert policy.check(QUOTE, tcb_status="UpToDate", now=NOW, quote_time=NOW) == "real"
    again = Policy.from_json(policy.to_json())
    assert again == policy and again.report_data == policy.report_data


def test_bare_list_and_cvm_reverse_proxy_indices() -> None:
    policy = Policy.from_json(
        [{"measurement_id": "x", "measurements": {"0": {"expected": V4_MRTD.hex()}}}]
    )
    assert policy.measurements == (MeasurementRecord.of("x", mrtd=V4_MRTD),)
    assert policy.allowed_tcb_statuses == {"UpToDate"}


def test_any_measurements_must_be_explicit() -> None:
    assert Policy.from_json({"measurements": "any"}).measurements is None
    with pytest.raises(PolicyError) as err:
        Policy.from_json({})
    assert err.value.key == "measurements"


def bad(doc: object) -> str:
    with pytest.raises(PolicyError) as err:
        Policy.from_json(doc)  # type: ignore[arg-type]
    return err.value.key


def test_policy_errors_name_the_key() -> None:
    record = FULL["measurements"][0]  # type: ignore[index]
    assert bad({**FULL, "tcb_status": ["UpToDate"]}) == "tcb_status"
    assert bad({**FULL, "tcb_statuses": ["Fine"]}) == "tcb_statuses"
    assert bad({**FULL, "tcb_statuses": []}) == "tcb_statuses"
    assert bad({**FULL, "allow_debug": True}) == "allow_debug"
    assert bad({**FULL, "require_sept_ve_disable": False}) == "require_sept_ve_disable"
    assert bad({**FULL, "mr_owner": ["00" * 47]}) == "mr_owner[0]"
    assert bad({**FULL, "report_data": "zz" * 64}) == "report_data"
    assert bad({**FULL, "xfam": {"value": "00"}}) == "xfam"
    assert bad({**FULL, "max_quote_age_seconds": -1}) == "max_quote_age_seconds"
    assert bad({**FULL, "measurements": []}) == "measurements"
    short = {**record, "measurements": {"mrtd": {"expected_any": [V4_MRTD.hex(), "00" * 47]}}}
    assert bad({"measurements": [short]}) == "measurements[0].measurements.mrtd.expected_any[1]"
    assert bad({"measurements": [{**record, "pcr": 1}]}) == "measurements[0].pcr"
    assert bad({"measurements": [{**record, "attestation_type": "azure-tdx"}]}) == (
        "measurements[0].attestation_type"
    )
    rtmr9 = {**record, "measurements": {"rtmr9": {"expected": V4_MRTD.hex()}}}
    assert bad({"measurements": [rtmr9]}) == "measurements[0].measurements.rtmr9"
    assert bad({"measurements": [{**record, "measurements": {}}]}) == "measurements[0].measurements"
    assert bad({"measurements": [record, record]}) == "measurements"
    assert bad("{not json") == ""
    assert bad(7) == ""


def test_policy_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        Policy.from_file(tmp_path / "missing.json")
    path = tmp_path / "p.json"
    path.write_text('{"measurements": "any", "typo": 1}')
    with pytest.raises(PolicyError, match=r"p\.json") as err:
        Policy.from_file(path)
    assert err.value.key == "typo"


def test_registers_from_measurements_documents() -> None:
    doc = {"measurements": {"mrtd": V4_MRTD.hex(), "rtmr1": {"expected": V4_RTMR1.hex()}}}
    assert MeasurementRecord.registers_from_document(doc) == {"mrtd": V4_MRTD, "rtmr1": V4_RTMR1}
    flat = {"mrtd": V4_MRTD.hex(), "qemu": "9.2", "4": "00" * 48}
    assert MeasurementRecord.registers_from_document(flat) == {"mrtd": V4_MRTD, "rtmr3": bytes(48)}
    with pytest.raises(PolicyError):
        MeasurementRecord.registers_from_document({"notes": "nothing"})
    with pytest.raises(PolicyError):
        MeasurementRecord.registers_from_document(["mrtd"])


def test_records_must_constrain_something() -> None:
    with pytest.raises(PolicyError):
        MeasurementRecord("empty", ())
    with pytest.raises(PolicyError):
        MeasurementRecord.of("bad", mrtd=b"short")
    with pytest.raises(PolicyError):
        MeasurementRecord.of("bad", pcr4=V4_MRTD)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
policy_keys = st.sampled_from([*sorted(FULL), "measurement_id", "expected_any", "mrtd"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(policy_keys, json_values, max_size=6) | json_values)
def test_fuzz_policy_documents_only_raise_policy_error(doc: object) -> None:
    try:
        Policy.from_json(doc)  # type: ignore[arg-type]
    except PolicyError:
        pass
