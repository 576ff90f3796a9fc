"""Peer entries and infos for the streams core tests."""

from __future__ import annotations

from node.discovery import PROTOCOL_VERSION, PeerEntry, PeerInfo
from node.primitives import Digest, SecretKey, Ticket

NETWORK = Digest.from_name("streams-tests")
STREAM = Digest.from_name("tests.Reading")
NOW = 1_750_000_000.0


def key(n: int) -> SecretKey:
    return SecretKey.from_seed(n.to_bytes(32, "big"))


def info(
    n: int,
    *,
    tags: tuple[str, ...] = (),
    streams: tuple[Digest, ...] = (STREAM,),
    tickets: tuple[Ticket, ...] = (),
    update_ms: int = 1,
    start_ms: int = 1,
) -> PeerInfo:
    """Peer ``n``'s info; a different ``update_ms`` with other content is a newer entry."""
    return PeerInfo(
        PeerEntry(
            protocol=PROTOCOL_VERSION,
            network_id=NETWORK,
            peer_id=key(n).peer_id,
            start_ms=start_ms,
            update_ms=max(update_ms, start_ms),
            addrs=(f"127.0.0.1:{7400 + n}",),
            tags=frozenset(Digest.from_name(t) for t in tags),
            streams=frozenset(streams),
            tickets=tuple(sorted(tickets, key=lambda t: t.id())),
        )
    )
