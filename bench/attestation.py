"""Quote verifications per second: one quote, collateral already loaded (as a cache serves it).

Run: .venv/bin/python bench/attestation.py [--seconds S]

Cases: the real Intel-signed v4 test vector at a fixed time inside its collateral window
(Intel root), and a quote from the SIMULATED TDX platform (its own root). Each verification is
the full `verify_quote`: parse, collateral window, PCK chain encoding, dcap-qvl (signatures,
CRLs, TCB level) and the policy. Also the parts: parsing alone and dcap-qvl alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's directory comes first on sys.path and its name would shadow
# the attestation package: import from the project root instead.
sys.path[0] = str(ROOT)

import dcap_qvl  # noqa: E402

from attestation import (  # noqa: E402
    Collateral,
    MeasurementRecord,
    Policy,
    parse_quote,
    verify_quote,
)

DATA = ROOT / "tests" / "data"
INSIDE_WINDOW = 1_751_328_000  # 2025-07-01T00:00:00Z
SIMULATED_NOW = 1_750_000_000


def rate(label: str, call: Callable[[], object], seconds: float) -> None:
    call()  # warm caches
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            call()
        count += 10
    elapsed = time.perf_counter() - start
    print(f"{label:<52} {count / elapsed:>10,.0f} /s   ({elapsed / count * 1e6:,.1f} µs each)")


def bench_real(seconds: float) -> None:
    raw = (DATA / "dcap-qvl_tdx_quote.bin").read_bytes()
    collateral = Collateral.from_file(DATA / "dcap-qvl_tdx_quote_collateral.json")
    report = parse_quote(raw).td_report
    policy = Policy(
        measurements=(MeasurementRecord.of("sample", mrtd=report.mr_td, rtmr1=report.rtmr1),),
        report_data=report.report_data,
    )
    rate("real v4 quote: verify_quote (Intel root)",
         lambda: verify_quote(raw, collateral, INSIDE_WINDOW, policy), seconds)  # fmt: skip
    rate("real v4 quote: dcap_qvl.verify only",
         lambda: dcap_qvl.verify(raw, collateral.dcap, INSIDE_WINDOW), seconds)  # fmt: skip
    rate("real v4 quote: parse_quote only", lambda: parse_quote(raw), seconds)


def bench_simulated(seconds: float) -> None:
    try:
        from attestation.simulated import SimulatedPlatform
    except ImportError:
        print("simulated platform not available: skipped")
        return
    platform = SimulatedPlatform.ephemeral(seed=1)
    raw = platform.quote(bytes(64))
    collateral = Collateral.from_json(platform.collateral(SIMULATED_NOW))
    root = platform.root_ca_der
    policy = Policy(report_data=bytes(64))
    rate("SIMULATED v4 quote: verify_quote (simulated root)",
         lambda: verify_quote(raw, collateral, SIMULATED_NOW + 60, policy, root_ca_der=root),
         seconds)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case")
    args = parser.parse_args()
    bench_real(args.seconds)
    bench_simulated(args.seconds)


if __name__ == "__main__":
    main()
