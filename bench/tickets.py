"""Ticket validations per second: JWT (HS256, ES256, EdDSA) and TDX (simulated platform).

Run: .venv/bin/python bench/tickets.py [--seconds S]
TDX numbers use the simulated TDX platform (no TDX hardware here) with the collateral parsed
once and cached by the validator: they measure quote verification + binding, not PCCS fetches.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.primitives import Digest, PeerId, SecretKey, Ticket
from node.tickets import JwtTicketBuilder, JwtTicketValidator, validate_all

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
    print(f"{label:<44} {count / elapsed:>10,.0f} /s   ({elapsed / count * 1e6:,.1f} µs each)")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    bench_jwt(args.seconds)


if __name__ == "__main__":
    main()
