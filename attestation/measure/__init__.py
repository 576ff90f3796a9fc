"""Offline TDX measurement: MRTD, RTMR0-2 from boot inputs; RTMR replay from event logs.

measure(firmware=..., kernel=..., initrd=..., cmdline=..., memory="2G", qemu_version=...)
    -> Measurements (.registers(), .policy_record(), .to_json())
load_event_log(path) -> EventLog;  replay(events, expected=..., reference=...) -> ReplayReport
"""

from __future__ import annotations

from attestation.measure.errors import (
    EventLogError,
    FirmwareError,
    InputFileError,
    KernelImageError,
    MeasureError,
    QuoteError,
    VmConfigError,
)
from attestation.measure.eventlog import (
    EventLog,
    LogEvent,
    load_event_log,
    parse_ccel,
    parse_json_events,
)
from attestation.measure.events import MeasuredEvent, extend, fold
from attestation.measure.initrd import check_initrd
from attestation.measure.kernel import direct_boot_events, patch_setup_header, uki_boot_events
from attestation.measure.measurements import (
    Assumptions,
    InputRecord,
    Measurements,
    Reference,
    load_reference,
    measure,
)
from attestation.measure.pe import PeImage, authenticode_digest, authenticode_sha384
from attestation.measure.qemu import QemuVersion, parse_memory
from attestation.measure.quote import QuoteRegisters, load_quote, quote_registers
from attestation.measure.replay import Divergence, RegisterResult, ReplayReport, replay
from attestation.measure.rtmr0 import rtmr0_events
from attestation.measure.tdvf import PageOrdering, Tdvf, TdvfSection
from attestation.measure.vmconfig import AcpiDigests, OvmfVariant, VmConfig, load_vm_config

__all__ = [
    "AcpiDigests",
    "Assumptions",
    "Divergence",
    "EventLog",
    "EventLogError",
    "FirmwareError",
    "InputFileError",
    "InputRecord",
    "KernelImageError",
    "LogEvent",
    "MeasureError",
    "MeasuredEvent",
    "Measurements",
    "OvmfVariant",
    "PageOrdering",
    "PeImage",
    "QemuVersion",
    "QuoteError",
    "QuoteRegisters",
    "Reference",
    "RegisterResult",
    "ReplayReport",
    "Tdvf",
    "TdvfSection",
    "VmConfig",
    "VmConfigError",
    "authenticode_digest",
    "authenticode_sha384",
    "check_initrd",
    "direct_boot_events",
    "extend",
    "fold",
    "load_event_log",
    "load_quote",
    "load_reference",
    "load_vm_config",
    "measure",
    "parse_ccel",
    "parse_json_events",
    "parse_memory",
    "patch_setup_header",
    "quote_registers",
    "replay",
    "rtmr0_events",
    "uki_boot_events",
]
