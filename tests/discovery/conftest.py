"""Fixtures for the discovery tests: keys, entries and a hand-set clock."""

from __future__ import annotations

import pytest

from node.discovery import LocalEntry, SignedPeerEntry
from node.primitives import Digest, SecretKey

NOW = 1_750_000_000_000
NETWORK = Digest.from_name("discovery-tests")


def key(n: int) -> SecretKey:
    """A deterministic key per test peer number."""
    return SecretKey.from_seed(n.to_bytes(32, "big"))


def signed_entry(n: int, now_ms: int = NOW, *, network: Digest = NETWORK) -> SignedPeerEntry:
    return LocalEntry(key(n), network, now_ms, addrs=(f"10.0.0.{n}:7400",)).signed


@pytest.fixture
def local() -> LocalEntry:
    return LocalEntry(key(1), NETWORK, NOW, addrs=("10.0.0.1:7400",))
