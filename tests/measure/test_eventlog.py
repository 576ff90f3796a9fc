"""Event-log replay: dstack's JSON log against its real quote, tampering, the CCEL binary."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import dcap_qvl
import pytest

from attestation.measure import (
    EventLogError,
    LogEvent,
    MeasuredEvent,
    QuoteError,
    load_event_log,
    load_quote,
    parse_ccel,
    parse_json_events,
    quote_registers,
    replay,
)
from attestation.measure.events import dstack_runtime_digest, sha384
from tests.measure.builders import DATA

FIXTURE = DATA / "dstack_tdx-lite-getquote.json"
CCEL = DATA / "dstack_ccel.bin"
# Derived once by replaying dstack_ccel.bin (it comes without a quote); RTMR2/3 are empty.
CCEL_RTMR0 = (
    "274c2344116db7c663470693b5ba62b8621eac28cb41d2f8"
    "16ddf188f9f423f900a1c44d32386fd3c993dc814e62af9d"
)
CCEL_RTMR1 = (
    "bdcf4ee0f7fdfe7c73fbb19ded73193aee23a6726b86d3b2"
    "82ea097cf4c9ed7a0db21b5c1ccd513e410d90e310836b26"
)


def fixture() -> dict[str, str]:
    document: dict[str, str] = json.loads(FIXTURE.read_text())
    return document


def test_quote_registers_agree_with_dcap_qvl() -> None:
    raw = bytes.fromhex(fixture()["quote"])
    ours = quote_registers(raw)
    report = dcap_qvl.parse_quote(raw).report
    assert ours.mrtd == report.mr_td
    assert ours.rtmrs == (report.rt_mr0, report.rt_mr1, report.rt_mr2, report.rt_mr3)


def test_json_log_replays_to_the_real_quote() -> None:
    log = load_event_log(FIXTURE)
    assert log.format == "json" and len(log.events) == 29
    report = replay(log.events, expected=quote_registers(load_quote(FIXTURE)).as_expected())
    assert [r.matches for r in report.registers] == [True, True, True, True]
    assert [r.events for r in report.registers] == [13, 5, 2, 9]
    assert report.ok and not report.divergences


def test_runtime_digest_is_computed_from_payload() -> None:
    events = load_event_log(FIXTURE).events
    compose = next(e for e in events if e.name == "compose-hash")
    assert compose.digest_from_payload
    expected = sha384((0x08000001).to_bytes(4, "little") + b":compose-hash:" + compose.payload)
    assert compose.digest == expected


def tampered(index: int, **changes: str) -> tuple[LogEvent, ...]:
    items = json.loads(fixture()["event_log"])
    items[index].update(changes)
    return parse_json_events(items, "tampered.json")


def test_tampered_digest_is_pinpointed_against_a_reference() -> None:
    original = load_event_log(FIXTURE).events
    reference = [
        MeasuredEvent(e.register, e.description, e.digest, e.event_type)
        for e in original
        if e.register is not None
    ]
    events = tampered(11, digest="ab" * 48)  # RTMR1's kernel authenticode
    report = replay(
        events, expected=quote_registers(load_quote(FIXTURE)).as_expected(), reference=reference
    )
    assert [r.matches for r in report.registers] == [True, False, True, True]
    assert len(report.divergences) == 1
    divergence = report.divergences[0]
    assert (divergence.register, divergence.position, divergence.log_index) == (1, 0, 11)
    assert divergence.actual == bytes.fromhex("ab" * 48)
    assert divergence.expected == original[11].digest
    assert "RTMR1 event 0 (log #11)" in divergence.describe()


def test_tampered_payload_with_recorded_digest_is_pinpointed_alone() -> None:
    items = json.loads(fixture()["event_log"])
    for item in items:  # a log that records runtime digests, as a live guest's does
        if item["imr"] == 3:
            payload = bytes.fromhex(item["event_payload"])
            digest = dstack_runtime_digest(item["event_type"], item["event"], payload)
            item["digest"] = digest.hex()
    items[22]["event_payload"] = "00" * 32  # compose-hash swapped, digest left as recorded
    report = replay(parse_json_events(items, "log.json"))
    assert [(d.register, d.position, d.log_index) for d in report.divergences] == [(3, 2, 22)]
    assert "does not match the event's own data" in report.divergences[0].reason


def test_missing_and_extra_events_are_reported() -> None:
    original = load_event_log(FIXTURE).events
    reference = [
        MeasuredEvent(e.register, e.name, e.digest, e.event_type)
        for e in original
        if e.register == 2
    ]
    shorter = [e for e in original if e.index != 17]
    report = replay(shorter, reference=reference)
    assert report.divergences[0].reason == "expected event is missing from the log"
    extra = replace(original[17], index=99, digest=b"\x01" * 48)
    report = replay([*original, extra], reference=reference)
    assert report.divergences[0].reason == "unexpected extra event in the log"
    assert report.divergences[0].log_index == 99


def test_ccel_parses_and_replays() -> None:
    log = load_event_log(CCEL)
    assert log.format == "ccel" and len(log.events) == 18
    report = replay(log.events)
    assert not report.divergences  # every self-describing event matches its own data
    assert report.value(0).hex() == CCEL_RTMR0
    assert report.value(1).hex() == CCEL_RTMR1
    assert report.value(2) == report.value(3) == bytes(48)
    names = [e.description for e in log.events if e.register == 1]
    assert names[1:] == [
        "EV_EFI_ACTION Calling EFI Application from Boot Option",
        "EV_SEPARATOR",
        "EV_EFI_ACTION Exit Boot Services Invocation",
        "EV_EFI_ACTION Exit Boot Services Returned with Success",
    ]


def test_ccel_and_json_logs_share_firmware_events() -> None:
    """Two real logs of the same dstack OVMF: identical CFV, variables and Boot0000."""
    ccel = [e.digest for e in load_event_log(CCEL).events if e.register == 0]
    json_log = [e.digest for e in load_event_log(FIXTURE).events if e.register == 0]
    assert ccel[1:8] == json_log[1:8]
    assert ccel[11:] == json_log[11:]


def test_truncated_ccel_is_refused() -> None:
    used = CCEL.read_bytes().rstrip(b"\xff")
    with pytest.raises(EventLogError, match=r"cut\.bin: truncated: event 17 data at offset"):
        parse_ccel(used[:-10], "cut.bin")
    with pytest.raises(EventLogError, match=r"truncated: event 18 header"):
        parse_ccel(used + b"\x02\x00\x00", "cut.bin")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"CCEL" + bytes(60), "CCEL ACPI table header"),
        (bytes(40), "first event is not EV_NO_ACTION"),
        (struct.pack("<II20sI", 0, 3, bytes(20), 4) + b"abcd", "no 'Spec ID Event03'"),
    ],
)
def test_malformed_ccel(data: bytes, message: str) -> None:
    with pytest.raises(EventLogError, match=message):
        parse_ccel(data, "log.bin")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"imr": 4, "event_type": 1, "digest": "00" * 48}, "'imr' must be an RTMR index"),
        ({"imr": 0, "event_type": 4, "digest": ""}, r"event 0 \(EV_SEPARATOR\): empty 'digest'"),
        ({"imr": 0, "event_type": 4, "digest": "xyz"}, "event 0 digest: not hex"),
        ({"imr": 0, "event_type": 4, "digest": "00" * 20}, "digest has 20 bytes"),
        ("event", "expected an object"),
    ],
)
def test_malformed_json_events(item: object, message: str) -> None:
    with pytest.raises(EventLogError, match=message):
        parse_json_events([item], "log.json")


def test_event_log_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "log.json"
    bad.write_text("{not json")
    with pytest.raises(EventLogError, match=r"log\.json: not a valid JSON event list"):
        load_event_log(bad)


def test_quote_errors() -> None:
    with pytest.raises(QuoteError, match="shorter than a quote header"):
        quote_registers(b"\x04\x00", "q.bin")
    sgx = (DATA / "dcap-qvl_sgx_quote.bin").read_bytes()
    with pytest.raises(QuoteError, match="not a TDX quote"):
        quote_registers(sgx, "sgx.bin")
    v5 = quote_registers((DATA / "go-tdx-guest_quote_v5_sample.bin").read_bytes())
    assert len(v5.mrtd) == 48 and len(v5.rtmrs) == 4
