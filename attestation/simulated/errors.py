"""Errors of the simulated TDX platform: a branch of the attestation package's tree.

    AttestationError  (attestation.errors)
    └── SimulatedPlatformError
        ├── SimulatedInputError   a bad argument (also InvalidArgument): names the field
        └── SimulatedStateError   an unusable state directory: names the file and the problem

Errors of `cryptography` and the OS met while reading or writing the state directory are
translated into `SimulatedStateError`; nothing foreign escapes the public API.
"""

from __future__ import annotations

from attestation.errors import AttestationError, InvalidArgument


class SimulatedPlatformError(AttestationError):
    """Base of every error the simulated TDX platform raises."""


class SimulatedInputError(SimulatedPlatformError, InvalidArgument):
    """A bad argument (wrong length, unknown field, unknown TCB status)."""


class SimulatedStateError(SimulatedPlatformError):
    """The state directory cannot be read or written, or holds inconsistent files."""
