"""The measurement package's exception tree.

    MeasureError             base (an AttestationError): every error of ``attestation.measure``
    ├── InputFileError       a file that is missing, unreadable, empty or truncated
    ├── FirmwareError        a firmware image without usable TDX (TDVF) metadata
    ├── KernelImageError     a kernel/UKI that is not a well-formed PE/COFF image
    ├── VmConfigError        a VM-config file that is malformed or contradicts the flags
    ├── EventLogError        an event log (CCEL binary or JSON list) that does not parse
    └── QuoteError           a quote too short or of an unknown version to read registers

Every message names the file (or argument) and what is missing or wrong. ``struct``,
``json``, ``zlib`` and OS errors are translated where they arise; nothing foreign escapes
the public API.
"""

from __future__ import annotations

from attestation.errors import AttestationError


class MeasureError(AttestationError):
    """Base of every error the measurement package raises; ``source`` names the input."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source
        self.message = message


class InputFileError(MeasureError):
    """A file that cannot be read, is empty, or is truncated (e.g. an incomplete initrd)."""


class FirmwareError(MeasureError):
    """A firmware image with no TDX metadata, or metadata that contradicts the file."""


class KernelImageError(MeasureError):
    """A kernel or UKI that is not a PE/COFF image, or whose headers point outside it."""


class VmConfigError(MeasureError):
    """A VM-config file that is malformed, or whose values contradict the command line."""


class EventLogError(MeasureError):
    """An event log (CCEL binary or JSON event list) that is malformed or truncated."""


class QuoteError(MeasureError):
    """A quote whose registers cannot be read (too short, unknown version or body type)."""
