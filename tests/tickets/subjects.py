"""A stand-in for discovery's PeerEntry: only what validators read."""

from __future__ import annotations

from dataclasses import dataclass, replace

from node.primitives import Digest, PeerId, SecretKey, Ticket

NETWORK = Digest.from_name("tickets-test-network")


@dataclass(frozen=True)
class Subject:
    peer_id: PeerId
    network_id: Digest
    start_ms: int
    tickets: tuple[Ticket, ...] = ()

    def with_tickets(self, *tickets: Ticket) -> Subject:
        return replace(self, tickets=tickets)


def subject(
    seed: int = 1, *, network: Digest = NETWORK, start_ms: int = 1_700_000_000_000
) -> Subject:
    peer = SecretKey.from_seed(bytes([seed]) * 32).peer_id
    return Subject(peer_id=peer, network_id=network, start_ms=start_ms)
