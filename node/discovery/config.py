"""Tunables of the discovery core, with the seed's values where it has them."""

from __future__ import annotations

from dataclasses import dataclass, fields

from node.discovery.catalog import DEFAULT_MAX_DRIFT_MS, DEFAULT_TTL_MS
from node.discovery.entry import MAX_ENTRY_SIZE
from node.errors import ConfigError


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    """All durations in milliseconds; ``*_jitter`` is the +/- fraction applied to an interval."""

    ttl_ms: int = DEFAULT_TTL_MS
    """An entry not renewed within this time is purged (seed: purge_after 300 s)."""
    max_drift_ms: int = DEFAULT_MAX_DRIFT_MS
    """Entries and notices timestamped further from the local clock are dropped (seed: 50 s)."""
    announce_interval_ms: int = 45_000
    """Re-announce (re-sign with a new version) this often, which renews the TTL (seed: 45 s)."""
    announce_jitter: float = 0.5
    gossip_interval_ms: int = 200
    """Rumours learnt since the last round are pushed at most this often (one round)."""
    fanout: int = 4
    """Neighbours that get a round's rumours eagerly; the others get their ids (IHave)."""
    target_neighbours: int = 5
    """Dial catalog peers while fewer neighbours than this are connected."""
    max_neighbours: int = 8
    """Disconnect random neighbours beyond this many."""
    shuffle_interval_ms: int = 30_000
    """Replace one neighbour by a random catalog peer this often: keeps the overlay random and
    reconnects the sides of a healed partition."""
    shuffle_jitter: float = 0.5
    maintain_interval_ms: int = 1_000
    """While short of neighbours, retry dialling this often."""
    dial_timeout_ms: int = 10_000
    dial_backoff_ms: int = 1_000
    """First wait before re-dialling a peer that failed; doubles up to ``max_dial_backoff_ms``."""
    max_dial_backoff_ms: int = 60_000
    sync_timeout_ms: int = 5_000
    sync_attempts: int = 3
    sync_burst: int = 6
    """Sync requests one peer may make at once that this node answers (each costs the
    catalog); beyond these, one more every ``sync_refill_ms``. Normal operation asks far less
    (a sync per new connection and per on-demand ``sync_with``, a retry per ``sync_timeout``)."""
    sync_refill_ms: int = 5_000
    """The sustained rate of sync requests answered per peer: one per this many ms. A request
    beyond it gets ``SyncBusy`` with the time until the next is answered."""
    graft_timeout_ms: int = 400
    """Wait this long for an eager copy of a rumour announced by IHave before pulling it."""
    ping_interval_ms: int = 30_000
    """Each neighbour is pinged this often (RTT and a fresh entry)."""
    ping_jitter: float = 0.25
    max_message_bytes: int = 1024 * 1024
    """Messages carrying many entries (syncs, gossip batches) are split below this size."""
    max_entry_bytes: int = MAX_ENTRY_SIZE

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_jitter"):
                if not 0 <= value < 1:
                    raise ConfigError(f"discovery {field.name} must be in [0, 1), got {value}")
            elif value < 1:
                raise ConfigError(f"discovery {field.name} must be positive, got {value}")
        if self.max_neighbours < self.target_neighbours:
            raise ConfigError(
                f"discovery max_neighbours ({self.max_neighbours}) is below "
                f"target_neighbours ({self.target_neighbours})"
            )
        if self.max_message_bytes < 2 * self.max_entry_bytes:
            raise ConfigError(
                f"discovery max_message_bytes ({self.max_message_bytes}) must hold at least two "
                f"entries of max_entry_bytes ({self.max_entry_bytes})"
            )
