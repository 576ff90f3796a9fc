"""TDX attestation: quotes, DCAP verification, policy, collateral, quote providers.

Standalone (never imports ``node``). Importing the package is cheap: modules that load dcap-qvl
or cryptography are imported on first use of one of their names. To export a new name, add it
to ``_LAZY`` (name -> module) and to ``__all__``, plus the ``TYPE_CHECKING`` import for typing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from attestation.errors import (
    AttestationError,
    CollateralError,
    InvalidArgument,
    PolicyError,
    PolicyViolation,
    ProviderError,
    ProviderUnavailable,
    QuoteFormatError,
    VerificationFailed,
)
from attestation.policy import REGISTERS, TCB_STATUSES, MaskedValue, MeasurementRecord, Policy
from attestation.quote import QeReport, Quote, QuoteHeader, SignatureData, TdReport, parse_quote

if TYPE_CHECKING:
    from attestation.collateral import Collateral, CollateralCache, fetch_collateral
    from attestation.measure import (
        MeasureError,
        Measurements,
        load_event_log,
        measure,
        replay,
    )
    from attestation.providers import (
        TSM_REPORT_ROOT,
        ConfigfsOps,
        ConfigfsTsmProvider,
        QuoteProvider,
        SimulatedProvider,
        detect_provider,
    )
    from attestation.simulated import SimulatedPlatform
    from attestation.verify import INTEL_ROOT_CA_SHA256, VerificationReport, verify_quote

_LAZY = {
    "Collateral": "attestation.collateral",
    "CollateralCache": "attestation.collateral",
    "fetch_collateral": "attestation.collateral",
    "INTEL_ROOT_CA_SHA256": "attestation.verify",
    "VerificationReport": "attestation.verify",
    "verify_quote": "attestation.verify",
    "TSM_REPORT_ROOT": "attestation.providers",
    "ConfigfsOps": "attestation.providers",
    "ConfigfsTsmProvider": "attestation.providers",
    "QuoteProvider": "attestation.providers",
    "SimulatedProvider": "attestation.providers",
    "detect_provider": "attestation.providers",
    "SimulatedPlatform": "attestation.simulated",
    "MeasureError": "attestation.measure",
    "Measurements": "attestation.measure",
    "load_event_log": "attestation.measure",
    "measure": "attestation.measure",
    "replay": "attestation.measure",
}

__all__ = [
    "INTEL_ROOT_CA_SHA256",
    "REGISTERS",
    "TCB_STATUSES",
    "TSM_REPORT_ROOT",
    "AttestationError",
    "Collateral",
    "CollateralCache",
    "CollateralError",
    "ConfigfsOps",
    "ConfigfsTsmProvider",
    "InvalidArgument",
    "MaskedValue",
    "MeasureError",
    "Measurements",
    "MeasurementRecord",
    "Policy",
    "PolicyError",
    "PolicyViolation",
    "ProviderError",
    "ProviderUnavailable",
    "QeReport",
    "Quote",
    "QuoteFormatError",
    "QuoteHeader",
    "QuoteProvider",
    "SignatureData",
    "SimulatedPlatform",
    "SimulatedProvider",
    "TdReport",
    "VerificationFailed",
    "VerificationReport",
    "detect_provider",
    "fetch_collateral",
    "load_event_log",
    "measure",
    "parse_quote",
    "replay",
    "verify_quote",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'attestation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
