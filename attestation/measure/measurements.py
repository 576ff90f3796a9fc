"""Offline measurement of a TDX guest: inputs and host assumptions in, registers out.

``measure()`` reads the files, resolves every host-side assumption (each with where it came
from: the command line, the QEMU version, the VM config or a stated default) and computes the
registers it can: MRTD from the firmware; RTMR0 from the firmware plus a VM config; RTMR1 and
RTMR2 from a kernel (+ initrd, command line) or a UKI. RTMR3 holds runtime events and is never
predicted. ``Measurements.to_json()`` is a record the attestation policy can include as is:
``{measurement_id, measurements: {"mrtd"|"rtmr0".."rtmr2": {"expected_any": [hex]}}}`` plus
``inputs`` (sha256 of every input), ``assumptions`` and the expected ``events``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from attestation.measure._files import read_input
from attestation.measure.errors import MeasureError, VmConfigError
from attestation.measure.eventlog import load_event_log
from attestation.measure.events import (
    DIGEST_SIZE,
    MeasuredEvent,
    fold,
    register_name,
)
from attestation.measure.initrd import check_initrd
from attestation.measure.kernel import (
    ACPI_DATA_SIZE,
    SetupHeaderPatch,
    direct_boot_events,
    uki_boot_events,
)
from attestation.measure.qemu import (
    DEFAULT_MEMORY,
    DEFAULT_ORDERING,
    DEFAULT_PATCH_SETUP_HEADER,
    QemuVersion,
    parse_memory,
)
from attestation.measure.rtmr0 import rtmr0_events
from attestation.measure.tdvf import PageOrdering, Tdvf
from attestation.measure.vmconfig import VmConfig, load_vm_config

FORMAT_VERSION: Final = 1
_EXPLICIT: Final = "explicit"
_DEFAULT: Final = "default"


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One input: a file (path, size, sha256) or the command line (value, sha256)."""

    role: str
    sha256: str
    size: int
    path: str | None = None
    value: str | None = None

    def to_json(self) -> dict[str, object]:
        record: dict[str, object] = {"sha256": self.sha256, "size": self.size}
        if self.path is not None:
            record["path"] = self.path
        if self.value is not None:
            record["value"] = self.value
        return record


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Host-side facts the registers depend on, each with its origin (``*_source``)."""

    qemu_version: str | None
    page_ordering: PageOrdering | None
    page_ordering_source: str | None
    setup_header_patched: bool | None
    setup_header_source: str | None
    memory: int
    memory_source: str
    cpus: int | None
    cpus_source: str | None
    ovmf_variant: str | None
    boot: str | None  # "direct", "uki" or None (no kernel measured)
    initrd_address: int | None
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "qemu_version": self.qemu_version,
            "page_ordering": None if self.page_ordering is None else self.page_ordering.value,
            "page_ordering_source": self.page_ordering_source,
            "setup_header_patched": self.setup_header_patched,
            "setup_header_source": self.setup_header_source,
            "memory": self.memory,
            "memory_source": self.memory_source,
            "cpus": self.cpus,
            "cpus_source": self.cpus_source,
            "ovmf_variant": self.ovmf_variant,
            "boot": self.boot,
            "acpi_data_size": ACPI_DATA_SIZE,
            "initrd_address": self.initrd_address,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Measurements:
    measurement_id: str
    mrtd: bytes | None
    rtmrs: Mapping[int, bytes]
    events: tuple[MeasuredEvent, ...]
    inputs: tuple[InputRecord, ...]
    assumptions: Assumptions

    def registers(self) -> dict[str, bytes]:
        """The predicted registers, keyed ``mrtd``, ``rtmr0`` ... (only those computed)."""
        found = {} if self.mrtd is None else {"mrtd": self.mrtd}
        found.update({register_name(i): value for i, value in sorted(self.rtmrs.items())})
        return found

    def policy_record(self) -> dict[str, object]:
        return {
            "measurement_id": self.measurement_id,
            "measurements": {
                name: {"expected_any": [value.hex()]} for name, value in self.registers().items()
            },
        }

    def to_json(self) -> dict[str, object]:
        document = self.policy_record()
        document["format"] = FORMAT_VERSION
        document["inputs"] = {record.role: record.to_json() for record in self.inputs}
        document["assumptions"] = self.assumptions.to_json()
        document["events"] = {
            register_name(i): [e.to_json() for e in self.events if e.register == i]
            for i in sorted(self.rtmrs)
        }
        return document


def measure(
    *,
    firmware: str | Path | None = None,
    kernel: str | Path | None = None,
    initrd: str | Path | None = None,
    uki: str | Path | None = None,
    cmdline: str | None = None,
    memory: int | str | None = None,
    cpus: int | None = None,
    qemu_version: str | None = None,
    ordering: PageOrdering | str | None = None,
    patch_setup_header: bool | None = None,
    vm_config: str | Path | VmConfig | None = None,
    measurement_id: str | None = None,
) -> Measurements:
    """Predict MRTD and RTMR0-2 for a TD booted by QEMU with these inputs (see module doc)."""
    _check_combination(firmware, kernel, initrd, uki, cmdline, vm_config)
    memory_flag = _memory(memory)
    inputs: list[InputRecord] = []
    notes: list[str] = []
    config_records: list[InputRecord] = []  # listed after the boot files
    config = _load_config(vm_config, config_records)
    version_text = _agree("qemu_version", qemu_version, config and config.qemu_version, config)
    version = None if version_text is None else QemuVersion.parse(version_text)
    page_ordering, page_source = _resolve_ordering(ordering, version)
    patched, patch_source = _resolve_patch(patch_setup_header, version)
    memory_value = _agree("memory", memory_flag, config and config.memory, config)
    memory_bytes = DEFAULT_MEMORY if memory_value is None else memory_value
    cpu_count = _agree("cpus", cpus, config and config.cpus, config)

    mrtd = None
    events: list[MeasuredEvent] = []
    if firmware is not None:
        tdvf = Tdvf.parse(_read(firmware, "firmware", inputs), str(firmware))
        mrtd = tdvf.mrtd(page_ordering)
        if page_source == _DEFAULT:
            notes.append(
                f"MRTD assumes {page_ordering.value} page ordering (QEMU >= 9) by default; "
                "pass the host's QEMU version or the ordering to be sure"
            )
        if config is not None:
            events += rtmr0_events(tdvf, memory=memory_bytes, config=config)
        else:
            notes.append("RTMR0 not computed: it needs a VM config with the ACPI digests")
    patch = None
    if kernel is not None or uki is not None:
        boot_events, patch = _boot_events(
            kernel, initrd, uki, cmdline or "", memory_bytes, patched, inputs
        )
        events += boot_events
        if patch_source == _DEFAULT:
            notes.append(
                "RTMR1 assumes QEMU patches the kernel's setup header (QEMU <= 10.1) by default; "
                "pass the host's QEMU version to be sure"
            )
    inputs += config_records
    rtmrs = {
        register: fold(e.digest for e in events if e.register == register)
        for register in sorted({e.register for e in events})
    }
    booted = kernel is not None or uki is not None
    assumptions = Assumptions(
        qemu_version=None if version is None else str(version),
        page_ordering=page_ordering if firmware is not None else None,
        page_ordering_source=page_source if firmware is not None else None,
        setup_header_patched=patched if booted else None,
        setup_header_source=patch_source if booted else None,
        memory=memory_bytes,
        memory_source=_origin(memory_flag, config and config.memory),
        cpus=cpu_count,
        cpus_source=None if cpu_count is None else _origin(cpus, config and config.cpus),
        ovmf_variant=None if config is None else config.ovmf_variant.value,
        boot=None if not booted else ("direct" if kernel is not None else "uki"),
        initrd_address=None if patch is None else patch.initrd_address,
        notes=tuple(notes),
    )
    measured = Measurements("", mrtd, rtmrs, tuple(events), tuple(inputs), assumptions)
    return replace(measured, measurement_id=measurement_id or _default_id(measured))


def _boot_events(
    kernel: str | Path | None,
    initrd: str | Path | None,
    uki: str | Path | None,
    cmdline: str,
    memory: int,
    patched: bool,
    inputs: list[InputRecord],
) -> tuple[list[MeasuredEvent], SetupHeaderPatch | None]:
    if uki is not None:
        uki_bytes = _read(uki, "uki", inputs)
        return uki_boot_events(uki_bytes, memory=memory, patch_header=patched, source=str(uki))
    assert kernel is not None
    kernel_bytes = _read(kernel, "kernel", inputs)
    initrd_bytes = None
    if initrd is not None:
        initrd_bytes = _read(initrd, "initrd", inputs)
        check_initrd(initrd_bytes, str(initrd))
    inputs.append(_text_record("cmdline", cmdline))
    return direct_boot_events(
        kernel_bytes,
        initrd=initrd_bytes,
        cmdline=cmdline,
        memory=memory,
        patch_header=patched,
        source=str(kernel),
    )


@dataclass(frozen=True, slots=True)
class Reference:
    """Expected events (and MRTD, if known) to compare an event log against."""

    source: str
    events: tuple[MeasuredEvent, ...]
    mrtd: bytes | None = None


def load_reference(path: str | Path) -> Reference:
    """A reference from a measurements JSON (``events``) or from a known-good event log."""
    source = str(path)
    raw = read_input(path, "reference")
    document: Any = None
    if raw.lstrip()[:1] == b"{":
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MeasureError(source, f"not JSON: {exc}") from None
    if isinstance(document, dict) and "events" in document and "measurements" in document:
        return _reference_from_measurements(document, source)
    log = load_event_log(path)
    events = tuple(
        MeasuredEvent(e.register, e.description, e.digest, e.event_type)
        for e in log.events
        if e.register is not None
    )
    return Reference(source, events)


def _reference_from_measurements(document: dict[str, Any], source: str) -> Reference:
    events: list[MeasuredEvent] = []
    groups = document["events"]
    if not isinstance(groups, dict):
        raise MeasureError(source, "'events' must map register names to event lists")
    for register in range(4):
        for index, item in enumerate(groups.get(register_name(register), [])):
            try:
                digest = bytes.fromhex(item["digest"])
                events.append(
                    MeasuredEvent(register, str(item["name"]), digest, int(item["event_type"]))
                )
            except (KeyError, TypeError, ValueError):
                raise MeasureError(
                    source, f"events.{register_name(register)}[{index}] is not a valid event"
                ) from None
            if len(digest) != DIGEST_SIZE:
                raise MeasureError(
                    source, f"events.{register_name(register)}[{index}]: bad digest size"
                )
    mrtd = None
    try:
        mrtd_values = document["measurements"].get("mrtd", {}).get("expected_any", [])
        mrtd = bytes.fromhex(mrtd_values[0]) if mrtd_values else None
    except (AttributeError, TypeError, ValueError):
        raise MeasureError(
            source, "measurements.mrtd.expected_any is not a list of hex values"
        ) from None
    return Reference(source, tuple(events), mrtd)


def _check_combination(
    firmware: object,
    kernel: object,
    initrd: object,
    uki: object,
    cmdline: str | None,
    vm_config: object,
) -> None:
    if firmware is None and kernel is None and uki is None:
        raise MeasureError("", "nothing to measure: give a firmware, a kernel or a UKI")
    if uki is not None and (kernel is not None or initrd is not None):
        raise MeasureError(
            "--uki", "a UKI carries its own kernel and initrd; drop --kernel/--initrd"
        )
    if uki is not None and cmdline:
        raise MeasureError("--uki", "a UKI carries its command line in .cmdline; drop --cmdline")
    if initrd is not None and kernel is None:
        raise MeasureError("--initrd", "an initrd is only measured with a --kernel")
    if vm_config is not None and firmware is None:
        raise MeasureError("--vm-config", "RTMR0 needs the --firmware as well")


def _load_config(
    vm_config: str | Path | VmConfig | None, inputs: list[InputRecord]
) -> VmConfig | None:
    if vm_config is None or isinstance(vm_config, VmConfig):
        return vm_config
    config = load_vm_config(vm_config)
    _read(vm_config, "vm_config", inputs)
    return config


def _read(path: str | Path, role: str, inputs: list[InputRecord]) -> bytes:
    data = read_input(path, role.replace("_", "-"))
    inputs.append(InputRecord(role, hashlib.sha256(data).hexdigest(), len(data), path=str(path)))
    return data


def _text_record(role: str, text: str) -> InputRecord:
    raw = text.encode()
    return InputRecord(role, hashlib.sha256(raw).hexdigest(), len(raw), value=text)


def _memory(value: int | str | None) -> int | None:
    return None if value is None else parse_memory(value)


def _agree(key: str, flag: Any, configured: Any, config: VmConfig | None) -> Any:
    if flag is not None and configured is not None and flag != configured:
        assert config is not None
        raise VmConfigError(
            config.source, f"{key} is {configured!r} here but {flag!r} on the command line"
        )
    return flag if flag is not None else configured


def _origin(flag: object, configured: object) -> str:
    if flag is not None:
        return _EXPLICIT
    return "vm-config" if configured is not None else _DEFAULT


def _resolve_ordering(
    ordering: PageOrdering | str | None, version: QemuVersion | None
) -> tuple[PageOrdering, str]:
    if ordering is not None:
        try:
            return PageOrdering(ordering), _EXPLICIT
        except ValueError:
            raise MeasureError("--ordering", f"unknown ordering {ordering!r}") from None
    if version is not None:
        return version.page_ordering, "qemu-version"
    return DEFAULT_ORDERING, _DEFAULT


def _resolve_patch(patch: bool | None, version: QemuVersion | None) -> tuple[bool, str]:
    if patch is not None:
        return patch, _EXPLICIT
    if version is not None:
        return version.patches_setup_header, "qemu-version"
    return DEFAULT_PATCH_SETUP_HEADER, _DEFAULT


def _default_id(measured: Measurements) -> str:
    digest = hashlib.sha256(b"".join(measured.registers().values())).hexdigest()
    return f"tdx-{digest[:16]}"
