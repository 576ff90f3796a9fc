"""Errors of the simulated TDX platform.

    SimulatedPlatformError
    ├── SimulatedInputError   a bad argument: names the field and what is wrong with it
    └── SimulatedStateError   an unusable state directory: names the file and the problem

Errors of `cryptography` and the OS met while reading or writing the state directory are
translated into `SimulatedStateError`; nothing foreign escapes the public API.
"""

from __future__ import annotations


class SimulatedPlatformError(Exception):
    """Base of every error the simulated TDX platform raises."""


class SimulatedInputError(SimulatedPlatformError, ValueError):
    """A bad argument (wrong length, unknown field, unknown TCB status)."""


class SimulatedStateError(SimulatedPlatformError):
    """The state directory cannot be read or written, or holds inconsistent files."""
