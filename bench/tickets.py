"""Ticket validations per second: JWT (HS256, ES256, EdDSA) and TDX (simulated platform).

Run: .venv/bin/python bench/tickets.py [--seconds S]
TDX numbers use the simulated TDX platform (no TDX hardware here) with the collateral parsed
once and cached by the validator: they measure quote verification + binding, not PCCS fetches.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

# Run as a script, bench/ comes first on sys.path and bench/attestation.py would shadow the
# attestation package the runtime imports: import from the project root instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from node.primitives import Digest, PeerId, SecretKey, Ticket  # noqa: E402
from node.tickets import JwtTicketBuilder, JwtTicketValidator, validate_all  # noqa: E402

NOW = 1_750_000_000.0


@dataclass(frozen=True)
class Subject:
    peer_id: PeerId
    network_id: Digest
    start_ms: int
    tickets: tuple[Ticket, ...]


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
    print(f"{label:<48} {count / elapsed:>10,.0f} /s   ({elapsed / count * 1e6:,.1f} µs each)")


def bench_jwt(seconds: float) -> None:
    peer = SecretKey.from_seed(b"\x01" * 32).peer_id
    network = Digest.from_name("bench")
    es = ec.generate_private_key(ec.SECP256R1())
    ed = Ed25519PrivateKey.generate()
    cases: list[tuple[str, JwtTicketValidator, JwtTicketBuilder]] = [
        (
            "HS256",
            JwtTicketValidator({"HS256": b"s" * 32}, issuers=["ops"]),
            JwtTicketBuilder(b"s" * 32, "HS256").issuer("ops").expires_in(3600),
        ),
        (
            "ES256",
            JwtTicketValidator({"ES256": es.public_key()}, issuers=["ops"]),
            JwtTicketBuilder(es, "ES256").issuer("ops").expires_in(3600),
        ),
        (
            "EdDSA",
            JwtTicketValidator({"EdDSA": ed.public_key()}, issuers=["ops"]),
            JwtTicketBuilder(ed, "EdDSA").issuer("ops").expires_in(3600),
        ),
    ]
    for alg, validator, builder in cases:
        ticket = builder.mint(peer, now=NOW)
        subject = Subject(peer, network, 0, (ticket,))
        rate(f"JWT {alg} validate", partial(validate_all, [validator], subject, NOW), seconds)
    mint = cases[0][2]
    rate("JWT HS256 mint", lambda: mint.mint(peer, now=NOW), seconds)


def bench_tdx(seconds: float) -> None:
    from attestation.collateral import Collateral
    from attestation.policy import MeasurementRecord, Policy
    from attestation.simulated import SimulatedPlatform
    from node.tickets import TdxTicketValidator, mint_tdx_ticket

    platform = SimulatedPlatform.ephemeral(7)  # SIMULATED TDX platform
    now = int(NOW)
    collateral = platform.collateral(now - 3600)
    peer = SecretKey.from_seed(b"\x01" * 32).peer_id
    network = Digest.from_name("bench")
    policy = Policy(measurements=(MeasurementRecord.of("image", mrtd=platform.td_defaults.mrtd),))
    carried = mint_tdx_ticket(platform, peer, network, 0, now - 60, now + 3600, collateral)
    bare = mint_tdx_ticket(platform, peer, network, 0, now - 60, now + 3600)
    print(f"TDX ticket size: {len(carried.data)} B with collateral, {len(bare.data)} B without")
    in_ticket = TdxTicketValidator(policy, root_ca_der=platform.root_ca_der)
    supplied = TdxTicketValidator(
        policy, root_ca_der=platform.root_ca_der, collateral=Collateral.from_json(collateral)
    )
    for label, validator, ticket in (
        ("TDX validate (simulated, collateral in ticket)", in_ticket, carried),
        ("TDX validate (simulated, verifier's collateral)", supplied, bare),
    ):
        subject = Subject(peer, network, 0, (ticket,))
        rate(label, partial(validate_all, [validator], subject, NOW), seconds)
    rate(
        "TDX mint (simulated quote)",
        partial(mint_tdx_ticket, platform, peer, network, 0, now - 60, now + 3600),
        seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    bench_jwt(args.seconds)
    bench_tdx(args.seconds)


if __name__ == "__main__":
    main()
