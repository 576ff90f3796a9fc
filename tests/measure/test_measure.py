"""measure() end to end, its JSON record, the CLI, errors and the exported names."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import attestation.measure as measure_pkg
from attestation.measure import (
    InputFileError,
    KernelImageError,
    MeasureError,
    PageOrdering,
    Tdvf,
    VmConfigError,
    fold,
    measure,
    quote_registers,
)
from attestation.measure.cli import measure_command
from tests.measure.builders import DATA, OVMF, build_bzimage, build_uki, cpio_newc

FIXTURE = DATA / "dstack_tdx-lite-getquote.json"


@pytest.fixture()
def boot(tmp_path: Path) -> dict[str, Path]:
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(build_bzimage(b"\x90" * 5000))
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(gzip.compress(cpio_newc([("init", b"#!/bin/sh\n")]), mtime=0))
    return {"kernel": kernel, "initrd": initrd}


@pytest.fixture()
def ovmf() -> Path:
    if not OVMF.exists():
        pytest.skip(f"{OVMF} is not installed (Debian package 'ovmf'; make debian-deps)")
    return OVMF


def test_full_measurement_record(ovmf: Path, boot: dict[str, Path]) -> None:
    result = measure(
        firmware=ovmf,
        kernel=boot["kernel"],
        initrd=boot["initrd"],
        cmdline="console=ttyS0",
        memory="2G",
        cpus=2,
        qemu_version="8.2.2",
        vm_config=FIXTURE,
        measurement_id="mosaik-test",
    )
    assert set(result.registers()) == {"mrtd", "rtmr0", "rtmr1", "rtmr2"}
    assert result.mrtd == Tdvf.parse(ovmf.read_bytes()).mrtd(PageOrdering.TWO_PASS)
    for register, value in result.rtmrs.items():
        assert value == fold(e.digest for e in result.events if e.register == register)
    document = json.loads(json.dumps(result.to_json()))
    assert document["measurement_id"] == "mosaik-test"
    assert document["measurements"]["rtmr1"] == {"expected_any": [result.rtmrs[1].hex()]}
    assert set(document["inputs"]) == {"firmware", "kernel", "initrd", "cmdline", "vm_config"}
    assert document["inputs"]["cmdline"]["value"] == "console=ttyS0"
    assumptions = document["assumptions"]
    assert assumptions["page_ordering"] == "two-pass"
    assert assumptions["page_ordering_source"] == "qemu-version"
    assert assumptions["setup_header_patched"] is True
    assert (assumptions["memory"], assumptions["cpus"]) == (2 << 30, 2)
    assert assumptions["notes"] == []
    assert [e["name"] for e in document["events"]["rtmr2"]] == ["kernel command line", "initrd"]


def test_rtmr0_from_vm_config_matches_quote_apart_from_cfv(ovmf: Path) -> None:
    result = measure(firmware=ovmf, vm_config=FIXTURE)
    quote = quote_registers(bytes.fromhex(json.loads(FIXTURE.read_text())["quote"]))
    log = [e for e in json.loads(json.loads(FIXTURE.read_text())["event_log"]) if e["imr"] == 0]
    digests = [
        bytes.fromhex(log[1]["digest"]) if e.name == "cfv" else e.digest for e in result.events
    ]
    assert fold(digests) == quote.rtmrs[0]
    assert result.assumptions.memory_source == "vm-config"


def test_defaults_are_stated(ovmf: Path, boot: dict[str, Path]) -> None:
    result = measure(firmware=ovmf, kernel=boot["kernel"])
    a = result.assumptions
    assert (a.page_ordering, a.page_ordering_source) == (PageOrdering.SINGLE_PASS, "default")
    assert (a.setup_header_patched, a.setup_header_source) == (True, "default")
    assert a.memory_source == "default"
    assert any("single-pass" in note for note in a.notes)
    assert any("RTMR0 not computed" in note for note in a.notes)


def test_qemu_10_2_leaves_the_kernel_unpatched(boot: dict[str, Path]) -> None:
    old = measure(kernel=boot["kernel"], initrd=boot["initrd"], qemu_version="10.1.0")
    new = measure(kernel=boot["kernel"], initrd=boot["initrd"], qemu_version="10.2.0")
    assert old.rtmrs[1] != new.rtmrs[1] and old.rtmrs[2] == new.rtmrs[2]
    assert new.assumptions.setup_header_patched is False


def test_uki_measurement(tmp_path: Path) -> None:
    uki = tmp_path / "mosaik.efi"
    uki.write_bytes(
        build_uki(build_bzimage(), cmdline=b"console=ttyS0", initrd=b"\x1f\x8b" + bytes(10))
    )
    result = measure(uki=uki, qemu_version="10.2")
    assert result.assumptions.boot == "uki" and set(result.rtmrs) == {1, 2}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, MeasureError, "nothing to measure"),
        ({"firmware": "f", "initrd": "x"}, MeasureError, "only measured with a --kernel"),
        ({"uki": "u", "kernel": "k"}, MeasureError, "drop --kernel"),
        (
            {"firmware": "/nonexistent/OVMF.fd"},
            InputFileError,
            r"/nonexistent/OVMF\.fd: firmware file not found",
        ),
        ({"kernel": "k", "memory": "2Q"}, MeasureError, "not a memory size"),
        ({"kernel": "k", "ordering": "three-pass"}, MeasureError, "unknown ordering"),
    ],
)
def test_bad_arguments(kwargs: dict[str, str], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        measure(**kwargs)  # type: ignore[arg-type]


def test_bad_files_name_the_file(tmp_path: Path, boot: dict[str, Path]) -> None:
    not_pe = tmp_path / "vmlinux"
    not_pe.write_bytes(b"\x7fELF" + bytes(4096))
    with pytest.raises(KernelImageError, match=r"vmlinux: not a PE/COFF image"):
        measure(kernel=not_pe)
    cut = tmp_path / "initrd-cut.img"
    cut.write_bytes(boot["initrd"].read_bytes()[:-9])
    with pytest.raises(InputFileError, match=r"initrd-cut\.img: truncated: the gzip stream"):
        measure(kernel=boot["kernel"], initrd=cut)
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match=r"empty\.img: initrd file is empty"):
        measure(kernel=boot["kernel"], initrd=empty)


def test_vm_config_contradicting_flags(ovmf: Path) -> None:
    with pytest.raises(VmConfigError, match="memory is 2147483648 here but 4294967296"):
        measure(firmware=ovmf, vm_config=FIXTURE, memory="4G")
    with pytest.raises(VmConfigError, match="qemu_version"):
        measure(firmware=ovmf, vm_config=FIXTURE, qemu_version="9.1.0")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(measure_command, list(args), prog_name="mosaik measure")
    return result.exit_code, result.output


def test_cli_help_ends_with_examples() -> None:
    code, output = run("--help")
    assert code == 0
    assert output.rstrip().splitlines()[-1].strip().startswith("mosaik measure --event-log")
    assert "Examples:" in output


def test_cli_text_and_json(ovmf: Path, boot: dict[str, Path]) -> None:
    args = [
        "--firmware",
        str(ovmf),
        "--kernel",
        str(boot["kernel"]),
        "--initrd",
        str(boot["initrd"]),
    ]
    code, text = run(*args, "--cmdline", "console=ttyS0", "--memory", "2G", "--cpus", "2")
    assert code == 0
    assert text.splitlines()[0].startswith("MRTD   ")
    assert "single-pass (default)" in text and "notes" in text
    code, raw = run(*args, "--qemu-version", "8.2.2", "--json")
    document = json.loads(raw)
    assert code == 0 and document["assumptions"]["page_ordering"] == "two-pass"
    expected = Tdvf.parse(ovmf.read_bytes()).mrtd(PageOrdering.TWO_PASS).hex()
    assert document["measurements"]["mrtd"]["expected_any"] == [expected]


def test_cli_event_log_against_quote() -> None:
    code, text = run("--event-log", str(FIXTURE), "--expect-quote", str(FIXTURE))
    assert code == 0
    assert text.count("matches quote") == 4 and "result  OK" in text


def test_cli_event_log_against_measurements_pinpoints(tmp_path: Path, ovmf: Path) -> None:
    measurements = tmp_path / "measurements.json"
    code, raw = run("--firmware", str(ovmf), "--vm-config", str(FIXTURE), "--json")
    measurements.write_text(raw)
    code, raw = run(
        "--event-log",
        str(FIXTURE),
        "--expect-quote",
        str(FIXTURE),
        "--expect",
        str(measurements),
        "--json",
    )
    document = json.loads(raw)
    assert code == 1 and document["ok"] is False
    assert document["mrtd"]["matches"] is False  # dstack's OVMF is not Debian's
    assert [(d["register"], d["position"]) for d in document["divergences"]] == [("rtmr0", 1)]
    assert "'cfv'" in document["divergences"][0]["reason"]


def test_cli_usage_and_domain_errors(tmp_path: Path) -> None:
    code, output = run()
    assert code == 2 and "give --firmware" in output
    code, output = run("--expect-quote", str(FIXTURE))
    assert code == 2 and "need --event-log" in output
    bad = tmp_path / "fw.fd"
    bad.write_bytes(bytes(4096))
    code, output = run("--firmware", str(bad))
    assert code == 1 and f"Error: {bad}: no TDX metadata" in output


def test_exported_names() -> None:
    for name in measure_pkg.__all__:
        assert hasattr(measure_pkg, name), name
    assert {"measure", "replay", "load_event_log", "MeasureError", "Measurements"} <= set(
        measure_pkg.__all__
    )


@pytest.mark.parametrize("blob", [b"", b"MZ", b"\xff" * 300, bytes(64), b"{", b"[1, 2]"])
def test_no_foreign_exception_leaks(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "input"
    path.write_bytes(blob)
    for call in (
        lambda: measure(firmware=path),
        lambda: measure(kernel=path),
        lambda: measure_pkg.load_event_log(path),
        lambda: measure_pkg.load_vm_config(path),
        lambda: measure_pkg.load_reference(path),
        lambda: measure_pkg.quote_registers(blob),
    ):
        with pytest.raises(MeasureError):
            call()
