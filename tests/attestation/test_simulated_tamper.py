"""Single-bit flips in a simulated quote are rejected by dcap-qvl, region by region.

~100 sampled (position, bit) pairs per region; the sample is seeded (``SIM_FLIP_SEED``
overrides it) and a failure prints the seed. Two parts of a quote are not covered by dcap-qvl
and are left out here: the outer certification data type (dcap-qvl does not read it) and the
copy of the root CA at the end of the PEM chain (the trust anchor is passed in, so the copy
is never used); `attestation.verify` must check both itself.
"""

from __future__ import annotations

import os
import random

import dcap_qvl
import pytest

from attestation.simulated import SimulatedPlatform

NOW = 1_750_000_000
SEED = int(os.environ.get("SIM_FLIP_SEED", "20250615"))
SAMPLES = 100

# v4 layout: header 0..48, TD report ..632, u32 signature data length ..636, quote signature
# ..700, attestation key ..764, u16 type 6 + u32 size ..770, QE report ..1154, QE report
# signature ..1218, u16 size + 32 bytes QE auth data ..1252, u16 type 5 + u32 size ..1258,
# PEM chain to the end.
REGIONS = {
    "header": (0, 48),
    "td_report": (48, 632),
    "signature_data_length": (632, 636),
    "quote_signature": (636, 700),
    "attestation_key": (700, 764),
    "qe_report": (770, 1154),
    "qe_report_signature": (1154, 1218),
    "qe_auth_data": (1218, 1252),
}
CHAIN_START = 1258


@pytest.fixture(scope="module")
def setup() -> tuple[SimulatedPlatform, bytes, dcap_qvl.QuoteCollateralV3]:
    platform = SimulatedPlatform.ephemeral(seed=11)
    quote = platform.quote(bytes(range(64)))
    assert quote[CHAIN_START:] == platform.pck_chain_pem  # the layout above is the real one
    return platform, quote, dcap_qvl.QuoteCollateralV3.from_json(platform.collateral_json(NOW))


def accepted(
    setup: tuple[SimulatedPlatform, bytes, dcap_qvl.QuoteCollateralV3], raw: bytes
) -> bool:
    platform, _, collateral = setup
    try:
        dcap_qvl.verify_with_root_ca(raw, collateral, platform.root_ca_der, NOW)
    except ValueError:
        return False
    return True


def flipped(quote: bytes, position: int, bit: int) -> bytes:
    mutated = bytearray(quote)
    mutated[position] ^= 1 << bit
    return bytes(mutated)


def sample(start: int, end: int, rng: random.Random) -> list[tuple[int, int]]:
    pairs = [(position, bit) for position in range(start, end) for bit in range(8)]
    return rng.sample(pairs, min(SAMPLES, len(pairs)))


def test_the_untampered_quote_is_accepted(
    setup: tuple[SimulatedPlatform, bytes, dcap_qvl.QuoteCollateralV3],
) -> None:
    assert accepted(setup, setup[1])


@pytest.mark.parametrize("region", list(REGIONS))
def test_bit_flips_are_rejected(
    setup: tuple[SimulatedPlatform, bytes, dcap_qvl.QuoteCollateralV3], region: str
) -> None:
    rng = random.Random(f"{SEED}/{region}")
    quote = setup[1]
    survivors = [
        pair for pair in sample(*REGIONS[region], rng) if accepted(setup, flipped(quote, *pair))
    ]
    assert not survivors, f"{region}: flips accepted {survivors} (SIM_FLIP_SEED={SEED})"


def test_bit_flips_in_the_pck_certificates_are_rejected(
    setup: tuple[SimulatedPlatform, bytes, dcap_qvl.QuoteCollateralV3],
) -> None:
    """Flips in the PCK leaf and PCK CA PEM blocks; the only harmless ones turn a line break
    into other whitespace, which leaves every certificate byte unchanged."""
    platform, quote, _ = setup
    chain = platform.pck_chain_pem
    end_marker = b"-----END CERTIFICATE-----\n"
    pck_ca_end = chain.index(end_marker, chain.index(end_marker) + 1) + len(end_marker)
    rng = random.Random(f"{SEED}/pck-chain")
    survivors = []
    for offset, bit in sample(0, pck_ca_end, rng):
        if accepted(setup, flipped(quote, CHAIN_START + offset, bit)):
            before = chain[offset : offset + 1]
            after = bytes([before[0] ^ (1 << bit)])
            if not (before == b"\n" and after.isspace()):
                survivors.append((offset, bit))
    assert not survivors, f"pck chain: flips accepted {survivors} (SIM_FLIP_SEED={SEED})"
