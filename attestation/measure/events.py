"""Measured events and register arithmetic shared by every register calculator.

A TDX RTMR starts as 48 zero bytes and is extended as ``R = SHA384(R || digest)``; MRTD is
one running SHA-384 (see ``tdvf``). Event types are the TCG PC Client values that the
firmware, the Linux EFI stub and dstack's runtime write into the event log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

DIGEST_SIZE: Final = 48
ZERO_REGISTER: Final = bytes(DIGEST_SIZE)
RTMR_COUNT: Final = 4

EV_POST_CODE: Final = 0x1
EV_NO_ACTION: Final = 0x3
EV_SEPARATOR: Final = 0x4
EV_ACTION: Final = 0x5
EV_EVENT_TAG: Final = 0x6
EV_PLATFORM_CONFIG_FLAGS: Final = 0xA
EV_IPL: Final = 0xD
EV_EFI_VARIABLE_DRIVER_CONFIG: Final = 0x80000001
EV_EFI_VARIABLE_BOOT: Final = 0x80000002
EV_EFI_BOOT_SERVICES_APPLICATION: Final = 0x80000003
EV_EFI_ACTION: Final = 0x80000007
EV_EFI_PLATFORM_FIRMWARE_BLOB2: Final = 0x8000000A
EV_EFI_HANDOFF_TABLES2: Final = 0x8000000B
EV_EFI_VARIABLE_BOOT2: Final = 0x8000000C
EV_EFI_VARIABLE_AUTHORITY: Final = 0x800000E0
DSTACK_RUNTIME_EVENT: Final = 0x08000001

EVENT_TYPE_NAMES: Final = {
    EV_POST_CODE: "EV_POST_CODE",
    EV_NO_ACTION: "EV_NO_ACTION",
    EV_SEPARATOR: "EV_SEPARATOR",
    EV_ACTION: "EV_ACTION",
    EV_EVENT_TAG: "EV_EVENT_TAG",
    EV_PLATFORM_CONFIG_FLAGS: "EV_PLATFORM_CONFIG_FLAGS",
    EV_IPL: "EV_IPL",
    EV_EFI_VARIABLE_DRIVER_CONFIG: "EV_EFI_VARIABLE_DRIVER_CONFIG",
    EV_EFI_VARIABLE_BOOT: "EV_EFI_VARIABLE_BOOT",
    EV_EFI_BOOT_SERVICES_APPLICATION: "EV_EFI_BOOT_SERVICES_APPLICATION",
    EV_EFI_ACTION: "EV_EFI_ACTION",
    EV_EFI_PLATFORM_FIRMWARE_BLOB2: "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
    EV_EFI_HANDOFF_TABLES2: "EV_EFI_HANDOFF_TABLES2",
    EV_EFI_VARIABLE_BOOT2: "EV_EFI_VARIABLE_BOOT2",
    EV_EFI_VARIABLE_AUTHORITY: "EV_EFI_VARIABLE_AUTHORITY",
    DSTACK_RUNTIME_EVENT: "DSTACK_RUNTIME_EVENT",
}

# The fixed EV_EFI_ACTION strings OVMF measures around the boot of an EFI application.
CALLING_EFI_APPLICATION: Final = b"Calling EFI Application from Boot Option"
EXIT_BOOT_SERVICES: Final = b"Exit Boot Services Invocation"
EXIT_BOOT_SERVICES_OK: Final = b"Exit Boot Services Returned with Success"
SEPARATOR_DATA: Final = bytes(4)


def sha384(data: bytes) -> bytes:
    """SHA-384 of ``data``."""
    return hashlib.sha384(data).digest()


def extend(register: bytes, digest: bytes) -> bytes:
    """One RTMR extension: ``SHA384(register || digest)``."""
    return hashlib.sha384(register + digest).digest()


def fold(digests: Iterable[bytes]) -> bytes:
    """The register value after extending a zero register with ``digests`` in order."""
    value = ZERO_REGISTER
    for digest in digests:
        value = extend(value, digest)
    return value


def register_name(index: int) -> str:
    """``rtmr0`` .. ``rtmr3`` for an RTMR index."""
    return f"rtmr{index}"


def event_type_name(event_type: int) -> str:
    """The TCG name of an event type, or its hex value when unknown."""
    return EVENT_TYPE_NAMES.get(event_type, f"0x{event_type:08x}")


def dstack_runtime_digest(event_type: int, name: str, payload: bytes) -> bytes:
    """dstack v1 runtime event digest: ``SHA384(u32_le(type) || ":" || name || ":" || payload)``."""
    return sha384(event_type.to_bytes(4, "little") + b":" + name.encode() + b":" + payload)


@dataclass(frozen=True, slots=True)
class MeasuredEvent:
    """One expected extension of an RTMR: what is measured (``name``) and its digest."""

    register: int
    name: str
    digest: bytes
    event_type: int

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "event_type": self.event_type,
            "digest": self.digest.hex(),
        }
