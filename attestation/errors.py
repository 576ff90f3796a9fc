"""The attestation package's exception tree.

    AttestationError
    ├── InvalidArgument        the caller passed something unusable (also a ValueError)
    ├── QuoteFormatError       bytes that are not a well-formed TDX quote (names the field)
    ├── PolicyError            a policy file or policy value that is malformed (names the key)
    ├── CollateralError        collateral that cannot be loaded, parsed or fetched
    ├── VerificationFailed     a quote rejected: ``.rule`` names the check that failed
    │   └── PolicyViolation    rejected by our policy (not by the DCAP signature chain)
    ├── ProviderError          a quote provider failed to produce a quote
    │   └── ProviderUnavailable  no provider on this machine (no configfs-tsm, no simulation)
    ├── SimulatedPlatformError the simulated TDX platform (attestation/simulated/errors.py)
    └── MeasureError           offline measurement (attestation/measure/errors.py)

Errors of dcap-qvl, cryptography and the OS are translated at the package boundary; nothing
foreign escapes the public API.
"""

from __future__ import annotations


class AttestationError(Exception):
    """Base of every error the attestation package raises."""


class InvalidArgument(AttestationError, ValueError):
    """An argument the caller passed is unusable (wrong length, naive datetime, ...)."""


class QuoteFormatError(AttestationError):
    """Bytes that do not parse as a TDX quote; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"quote field {field}: {message}")
        self.field = field
        self.message = message


class PolicyError(AttestationError):
    """A malformed policy; ``key`` is the JSON path of the offending entry."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"policy {key}: {message}" if key else f"policy: {message}")
        self.key = key
        self.message = message


class CollateralError(AttestationError):
    """Collateral that cannot be loaded, parsed or fetched."""


class VerificationFailed(AttestationError):
    """A quote that did not verify; ``rule`` names the failed check (e.g. ``signature_chain``)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


class PolicyViolation(VerificationFailed):
    """A verified quote that our policy refuses (``rule`` e.g. ``measurements.mrtd``)."""


class ProviderError(AttestationError):
    """A quote provider failed to produce a quote."""


class ProviderUnavailable(ProviderError):
    """No quote provider is available here (no configfs-tsm and no simulation requested)."""
