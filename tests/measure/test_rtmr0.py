"""RTMR0 from firmware + VM config, checked against dstack's real quote and event log."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from attestation.measure import (
    OvmfVariant,
    Tdvf,
    VmConfigError,
    fold,
    load_vm_config,
    quote_registers,
    rtmr0_events,
)
from attestation.measure.vmconfig import parse_vm_config
from tests.measure.builders import DATA, OVMF

FIXTURE = DATA / "dstack_tdx-lite-getquote.json"
ACPI = {
    "loader": "095d04cf26fe03aef6e3561fa24c1aa1cea93f4aeaf563b1f9f7616184c5345487592575943476"
    "9cec2490acb563a337",
    "rsdp": "8d9a4d4777a1bc77ecd9d8d37a4628129a80052a510320159a20a923bd07a0e90d8d1f2e1ebf088992"
    "b25f0d0fa672ef",
    "tables": "3070721e169bc41884724cb0e6b3082e1baf249083d8b389181ba50b9afa951057876c380b8870e8"
    "c2facf2eff67a2b6",
}


@pytest.fixture(scope="module")
def ovmf() -> Tdvf:
    if not OVMF.exists():
        pytest.skip(f"{OVMF} is not installed (Debian package 'ovmf'; make debian-deps)")
    return Tdvf.parse(OVMF.read_bytes(), str(OVMF))


def fixture_rtmr0_log() -> list[dict[str, object]]:
    document = json.loads(FIXTURE.read_text())
    return [e for e in json.loads(document["event_log"]) if e["imr"] == 0]


def test_dstack_vm_config_is_read() -> None:
    config = load_vm_config(FIXTURE)
    assert (config.memory, config.cpus, config.qemu_version) == (2 << 30, 2, "8.2.2")
    assert config.ovmf_variant is OvmfVariant.PRE_202505
    assert config.acpi.tables.hex() == ACPI["tables"]


def test_events_match_real_log_except_the_firmware_specific_cfv(ovmf: Tdvf) -> None:
    """dstack's OVMF shares Debian's TDVF memory layout but not its variable store: every
    recomputed digest (TD HOB for 2 GiB, Secure Boot variables, separator, BootOrder,
    Boot0000) equals the real log's; only the CFV differs."""
    config = load_vm_config(FIXTURE)
    ours = rtmr0_events(ovmf, memory=2 << 30, config=config)
    log = fixture_rtmr0_log()
    assert len(ours) == len(log) == 13
    differing = [
        e.name for e, real in zip(ours, log, strict=True) if e.digest.hex() != real["digest"]
    ]
    assert differing == ["cfv"]


def test_rtmr0_reproduces_real_quote_with_its_cfv(ovmf: Tdvf) -> None:
    config = load_vm_config(FIXTURE)
    events = rtmr0_events(ovmf, memory=2 << 30, config=config)
    cfv = bytes.fromhex(str(fixture_rtmr0_log()[1]["digest"]))
    digests = [cfv if e.name == "cfv" else e.digest for e in events]
    quote = quote_registers(bytes.fromhex(json.loads(FIXTURE.read_text())["quote"]))
    assert fold(digests) == quote.rtmrs[0]


def test_memory_changes_only_the_td_hob(ovmf: Tdvf) -> None:
    config = load_vm_config(FIXTURE)
    small = rtmr0_events(ovmf, memory=2 << 30, config=config)
    large = rtmr0_events(ovmf, memory=16 << 30, config=config)
    assert [a.name for a, b in zip(small, large, strict=True) if a.digest != b.digest] == ["td-hob"]


def test_202505_variant_layout(ovmf: Tdvf) -> None:
    config = replace(
        load_vm_config(FIXTURE),
        ovmf_variant=OvmfVariant.STABLE_202505,
        variable_authority=bytes(48),
    )
    names = [e.name for e in rtmr0_events(ovmf, memory=2 << 30, config=config)]
    assert len(names) == 17
    assert names[2:4] == ["fw_cfg BootMenu", "fw_cfg bootorder"]
    assert names[-4:] == ["variable authority", "BootOrder", "Boot0000", "Boot0001"]
    with pytest.raises(VmConfigError, match="variable_authority"):
        rtmr0_events(ovmf, memory=2 << 30, config=replace(config, variable_authority=None))


def test_mosaik_vm_config_shape() -> None:
    config = parse_vm_config(
        {"memory": "4G", "cpus": 4, "qemu_version": "9.2.0", "acpi": ACPI}, "vm.json"
    )
    assert (config.memory, config.cpus, config.qemu_version) == (4 << 30, 4, "9.2.0")
    assert config.acpi.rsdp.hex() == ACPI["rsdp"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected a JSON object"),
        ({"acpi": ACPI, "ram": "2G"}, "unknown key"),
        ({"memory": "2G"}, "missing 'acpi'"),
        ({"acpi": {**ACPI, "rsdp": "zz"}}, "acpi.rsdp: not hex"),
        ({"acpi": {**ACPI, "tables": "00" * 32}}, "acpi.tables: expected 48 bytes"),
        ({"acpi": ACPI, "cpus": 0}, "cpus: expected a positive integer"),
        ({"acpi": ACPI, "memory": "lots"}, "not a memory size"),
        ({"acpi": ACPI, "ovmf_variant": "2019"}, "unknown ovmf_variant"),
        ({"vm_config": "{}", "event_log": "[]"}, "no RTMR0 event named 'acpi-loader'"),
    ],
)
def test_bad_vm_configs(document: object, message: str) -> None:
    with pytest.raises(VmConfigError, match=message) as caught:
        parse_vm_config(document, "vm.json")
    assert str(caught.value).startswith("vm.json: ")
