"""VM-config files: the VM-dependent inputs of RTMR0 that are not recomputed here.

QEMU generates the guest's ACPI tables from the machine configuration (vCPUs, RAM, devices,
QEMU version); OVMF measures three fw_cfg blobs of them (``etc/table-loader``,
``etc/acpi/rsdp``, ``etc/acpi/tables``). Like dstack's "lite" verifier we take their SHA-384
digests from a VM config instead of regenerating the tables. Two shapes are read:

mosaik's own (every key optional except ``acpi``; unknown keys are refused)::

    {"memory": "2G", "cpus": 2, "qemu_version": "8.2.2", "ovmf_variant": "pre202505",
     "acpi": {"loader": "<sha384 hex>", "rsdp": "<sha384 hex>", "tables": "<sha384 hex>"},
     "variable_authority": "<sha384 hex, edk2-stable202505 OVMF only>"}

dstack's GetQuote response / verifier input: an object with ``vm_config`` (JSON text or object:
``cpu_count``, ``memory_size``, ``qemu_version``, ``ovmf_variant``) and ``event_log`` whose RTMR0
events named ``acpi-loader``, ``acpi-rsdp`` and ``acpi-tables`` carry the digests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from attestation.measure._files import read_input
from attestation.measure.errors import MeasureError, VmConfigError
from attestation.measure.events import DIGEST_SIZE, EV_EFI_VARIABLE_AUTHORITY
from attestation.measure.qemu import parse_memory

_KEYS: Final = frozenset(
    {"memory", "cpus", "qemu_version", "ovmf_variant", "acpi", "variable_authority"}
)
_ACPI_KEYS: Final = ("loader", "rsdp", "tables")


class OvmfVariant(StrEnum):
    """OVMF's RTMR0 event layout: edk2 before stable202505, or from stable202505 on."""

    PRE_202505 = "pre202505"
    STABLE_202505 = "202505"

    @classmethod
    def parse(cls, text: str, source: str) -> OvmfVariant:
        normalized = text.lower().removeprefix("edk2-").removeprefix("stable")
        for variant in cls:
            if normalized == variant.value:
                return variant
        raise VmConfigError(source, f"unknown ovmf_variant {text!r} (expected pre202505 or 202505)")


@dataclass(frozen=True, slots=True)
class AcpiDigests:
    loader: bytes
    rsdp: bytes
    tables: bytes


@dataclass(frozen=True, slots=True)
class VmConfig:
    """RTMR0's VM-dependent inputs; ``None`` fields are left to the command line/defaults."""

    acpi: AcpiDigests
    memory: int | None = None
    cpus: int | None = None
    qemu_version: str | None = None
    ovmf_variant: OvmfVariant = OvmfVariant.PRE_202505
    variable_authority: bytes | None = None
    source: str = "vm-config"


def load_vm_config(path: str | Path) -> VmConfig:
    """Read a VM-config file in either shape (see the module docstring)."""
    source = str(path)
    raw = read_input(path, "VM-config")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VmConfigError(source, f"not JSON: {exc}") from None
    return parse_vm_config(document, source)


def parse_vm_config(document: object, source: str = "vm-config") -> VmConfig:
    if not isinstance(document, dict):
        raise VmConfigError(source, "expected a JSON object")
    if "vm_config" in document and "event_log" in document:
        return _from_dstack(document, source)
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise VmConfigError(
            source, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    acpi = document.get("acpi")
    if not isinstance(acpi, dict):
        raise VmConfigError(source, "missing 'acpi' object with loader, rsdp and tables digests")
    digests = AcpiDigests(*(_digest(acpi.get(key), f"acpi.{key}", source) for key in _ACPI_KEYS))
    authority = document.get("variable_authority")
    return VmConfig(
        acpi=digests,
        memory=_memory(document.get("memory"), source),
        cpus=_cpus(document.get("cpus"), source),
        qemu_version=_optional_str(document.get("qemu_version"), "qemu_version", source),
        ovmf_variant=OvmfVariant.parse(str(document.get("ovmf_variant", "pre202505")), source),
        variable_authority=None
        if authority is None
        else _digest(authority, "variable_authority", source),
        source=source,
    )


def _from_dstack(document: dict[str, Any], source: str) -> VmConfig:
    vm = document["vm_config"]
    events = document["event_log"]
    try:
        vm = json.loads(vm) if isinstance(vm, str) else vm
        events = json.loads(events) if isinstance(events, str) else events
    except json.JSONDecodeError as exc:
        raise VmConfigError(source, f"vm_config/event_log is not JSON: {exc}") from None
    if not isinstance(vm, dict) or not isinstance(events, list):
        raise VmConfigError(source, "vm_config must be an object and event_log a list")
    named: dict[str, object] = {}
    authority: object = None
    for event in events:
        if isinstance(event, dict) and event.get("imr") == 0:
            named.setdefault(str(event.get("event", "")), event.get("digest"))
            if event.get("event_type") == EV_EFI_VARIABLE_AUTHORITY:
                authority = event.get("digest")
    for key in _ACPI_KEYS:
        if f"acpi-{key}" not in named:
            raise VmConfigError(source, f"event_log has no RTMR0 event named 'acpi-{key}'")
    digests = AcpiDigests(
        *(_digest(named[f"acpi-{key}"], f"event acpi-{key}", source) for key in _ACPI_KEYS)
    )
    return VmConfig(
        acpi=digests,
        memory=_memory(vm.get("memory_size"), source),
        cpus=_cpus(vm.get("cpu_count"), source),
        qemu_version=_optional_str(vm.get("qemu_version"), "vm_config.qemu_version", source),
        ovmf_variant=OvmfVariant.parse(str(vm.get("ovmf_variant", "pre202505")), source),
        variable_authority=None
        if authority is None
        else _digest(authority, "variable authority", source),
        source=source,
    )


def _digest(value: object, key: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise VmConfigError(source, f"{key}: expected a SHA-384 hex string")
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        raise VmConfigError(source, f"{key}: not hex: {value!r}") from None
    if len(digest) != DIGEST_SIZE:
        raise VmConfigError(source, f"{key}: expected {DIGEST_SIZE} bytes, got {len(digest)}")
    return digest


def _memory(value: object, source: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise VmConfigError(source, 'memory: expected a size such as "2G" or a byte count')
    try:
        return parse_memory(value, f"{source}: memory")
    except MeasureError as exc:
        raise VmConfigError(source, exc.message) from None


def _cpus(value: object, source: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise VmConfigError(source, f"cpus: expected a positive integer, got {value!r}")
    return value


def _optional_str(value: object, key: str, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise VmConfigError(source, f"{key}: expected a string")
    return value
