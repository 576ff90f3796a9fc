"""Host-side assumptions: QEMU version behaviours and guest memory sizes.

Two QEMU behaviours change the measurements of the same image:
- page ordering of the TDVF (MRTD): two-pass in QEMU 8.x, single-pass from QEMU 9.0;
- the Linux setup-header patch (RTMR1): applied up to QEMU 10.1, not from 10.2 for
  confidential guests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from attestation.measure.errors import MeasureError
from attestation.measure.tdvf import PageOrdering

_VERSION: Final = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")
_MEMORY: Final = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS: Final = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

DEFAULT_ORDERING: Final = PageOrdering.SINGLE_PASS
DEFAULT_PATCH_SETUP_HEADER: Final = True
DEFAULT_MEMORY: Final = 2 << 30


@dataclass(frozen=True, slots=True, order=True)
class QemuVersion:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str, source: str = "--qemu-version") -> QemuVersion:
        """Read ``8.2.2``, ``10.1`` or ``9.1.0 (Debian 1:9.1.0+ds-1)``."""
        match = _VERSION.match(text)
        if match is None:
            raise MeasureError(source, f"not a QEMU version: {text!r} (expected e.g. 8.2.2)")
        major, minor, patch = match.groups()
        version = cls(int(major), int(minor), int(patch or 0))
        if version.major < 8:
            raise MeasureError(source, f"QEMU {version} predates TDX support (8.x or newer needed)")
        return version

    @property
    def page_ordering(self) -> PageOrdering:
        return PageOrdering.TWO_PASS if self.major < 9 else PageOrdering.SINGLE_PASS

    @property
    def patches_setup_header(self) -> bool:
        return (self.major, self.minor) <= (10, 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_memory(value: str | int, source: str = "--memory") -> int:
    """Bytes of guest RAM from ``2G``, ``2048M``, ``2GiB`` or a plain byte count."""
    if isinstance(value, int):
        amount = value
    else:
        match = _MEMORY.match(value)
        if match is None:
            raise MeasureError(source, f"not a memory size: {value!r} (expected e.g. 2G or 2048M)")
        amount = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if amount <= 0 or amount % (1 << 20):
        raise MeasureError(source, f"memory size {amount} must be a positive multiple of 1 MiB")
    return amount


def format_memory(amount: int) -> str:
    for unit in ("T", "G", "M"):
        if amount % _UNITS[unit] == 0:
            return f"{amount // _UNITS[unit]}{unit}"
    return str(amount)
