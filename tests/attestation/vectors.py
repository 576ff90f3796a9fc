"""Real TDX test vectors (see tests/data/ATTRIBUTION.md) and times inside their windows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"

QUOTE_V4 = (DATA / "dcap-qvl_tdx_quote.bin").read_bytes()
COLLATERAL_V4 = (DATA / "dcap-qvl_tdx_quote_collateral.json").read_text()
QUOTE_OUTDATED = (DATA / "dcap-qvl_tdx_quote_outdated.bin").read_bytes()
COLLATERAL_OUTDATED = (DATA / "dcap-qvl_tdx_quote_outdated_collateral.json").read_text()
QUOTE_V5 = (DATA / "go-tdx-guest_quote_v5_sample.bin").read_bytes()
QUOTE_GCP_PADDED = (DATA / "go-tdx-guest_cos-113-tdx-quote.bin").read_bytes()
QUOTE_EXTRA_BYTES = (DATA / "go-tdx-guest_tdx_prod_quote_SPR_E4.bin").read_bytes()
QUOTE_SGX = (DATA / "dcap-qvl_sgx_quote.bin").read_bytes()

# Inside the v4 collateral's window (2025-06-19T10:32:27Z .. 2025-07-19T10:00:35Z).
INSIDE_V4 = int(datetime(2025, 7, 1, tzinfo=UTC).timestamp())
V4_NOT_BEFORE = int(datetime(2025, 6, 19, 10, 32, 27, tzinfo=UTC).timestamp())
V4_NOT_AFTER = int(datetime(2025, 7, 19, 10, 0, 35, tzinfo=UTC).timestamp())
# Inside the outdated collateral's window (2026-02-18 .. 2026-03-20).
INSIDE_OUTDATED = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())

# What dcap-qvl reports for QUOTE_V4 (its TD10 report).
V4_MRTD = bytes.fromhex(
    "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
    "de03ae6dc5f87f27428b2538873118b7"
)
V4_RTMR1 = bytes.fromhex(
    "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7"
    "aea8c323c173019b3093d54e579e9378"
)
V4_REPORT_DATA = bytes.fromhex(
    "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
    "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
)
