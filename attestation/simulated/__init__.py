"""A SIMULATED Intel TDX platform: quotes and collateral that dcap-qvl verifies against the
platform's own root CA, for development and tests where no TDX hardware exists."""

from __future__ import annotations

from attestation.simulated._collateral import TCB_STATUSES
from attestation.simulated._quote import TdReportFields
from attestation.simulated.errors import (
    SimulatedInputError,
    SimulatedPlatformError,
    SimulatedStateError,
)
from attestation.simulated.platform import SIMULATED, SimulatedPlatform

__all__ = [
    "SIMULATED",
    "TCB_STATUSES",
    "SimulatedInputError",
    "SimulatedPlatform",
    "SimulatedPlatformError",
    "SimulatedStateError",
    "TdReportFields",
]
