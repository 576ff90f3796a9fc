"""The per-peer limit on sync requests answered: the core driven by hand, clock set by the test."""

from __future__ import annotations

import pytest

from node.discovery import (
    DiscoveryConfig,
    DiscoveryCore,
    Output,
    SyncBusy,
    SyncCompleted,
    SyncFailed,
    SyncRequest,
    SyncResponse,
)
from node.discovery.ratelimit import TokenBuckets
from node.errors import ConfigError
from node.primitives import PeerId, encode
from tests.discovery.conftest import NOW, key, signed_entry
from tests.discovery.test_core import Wire, sent
from tests.discovery.test_core import make_core as make_test_core

LIMITED = DiscoveryConfig(target_neighbours=2, max_neighbours=3, sync_burst=3, sync_refill_ms=1_000)


def make_core(n: int, config: DiscoveryConfig = LIMITED) -> DiscoveryCore:
    return make_test_core(n, config)


class Requester:
    """Peer ``n`` asking ``core`` for syncs, one nonce each, its own entry as the request."""

    def __init__(self, core: DiscoveryCore, n: int) -> None:
        self.core = core
        self.peer: PeerId = key(n).peer_id
        self.entry = signed_entry(n).encode()
        self.nonce = 0
        core.peer_connected(self.peer, NOW, outbound=False)

    def ask(self, now_ms: int) -> SyncResponse | SyncBusy:
        """One whole sync request; the core's answer to it."""
        self.nonce += 1
        request = encode(SyncRequest(self.nonce, (self.entry,), last=True))
        replies = [
            o.message
            for o in sent(self.core.receive(self.peer, request, now_ms))
            if o.peer == self.peer and isinstance(o.message, SyncResponse | SyncBusy)
        ]
        assert len(replies) == 1, replies  # the catalog is small: one response chunk
        reply = replies[0]
        assert isinstance(reply, SyncResponse | SyncBusy) and reply.nonce == self.nonce
        return reply

    def answered(self, count: int, now_ms: int) -> int:
        """How many of ``count`` requests made at ``now_ms`` got the catalog."""
        return sum(isinstance(self.ask(now_ms), SyncResponse) for _ in range(count))


def test_a_burst_is_answered_and_the_excess_refused_with_the_time_to_wait() -> None:
    core = make_core(1)
    for n in (5, 6):
        core.feed(signed_entry(n), NOW)
    peer = Requester(core, 2)
    for _ in range(LIMITED.sync_burst):
        reply = peer.ask(NOW)
        assert isinstance(reply, SyncResponse)
        assert len(reply.entries) == 3  # the core's own entry and the two it holds
    busy = peer.ask(NOW)
    assert busy == SyncBusy(peer.nonce, LIMITED.sync_refill_ms)
    assert peer.ask(NOW + 400) == SyncBusy(peer.nonce, LIMITED.sync_refill_ms - 400)
    stats = core.statistics()
    assert (stats.syncs_served, stats.syncs_refused) == (LIMITED.sync_burst, 2)


def test_tokens_refill_with_time() -> None:
    core = make_core(1)
    peer = Requester(core, 2)
    assert peer.answered(10, NOW) == LIMITED.sync_burst
    refill = LIMITED.sync_refill_ms
    assert isinstance(peer.ask(NOW + refill - 1), SyncBusy)
    assert peer.answered(3, NOW + refill) == 1  # one token back per refill interval
    assert peer.answered(3, NOW + 3 * refill) == 2
    # Sustained: one request per refill interval is always answered.
    assert all(isinstance(peer.ask(NOW + k * refill), SyncResponse) for k in range(4, 20))
    # Idle long enough, the whole burst is back (and no more).
    assert peer.answered(10, NOW + 100 * refill) == LIMITED.sync_burst


def test_another_peer_is_unaffected_by_one_that_is_refused() -> None:
    core = make_core(1)
    greedy, other = Requester(core, 2), Requester(core, 3)
    assert greedy.answered(10, NOW) == LIMITED.sync_burst
    assert other.answered(LIMITED.sync_burst, NOW) == LIMITED.sync_burst
    assert isinstance(greedy.ask(NOW), SyncBusy) and isinstance(other.ask(NOW), SyncBusy)


def test_a_refused_request_is_still_merged() -> None:
    core = make_core(1)
    peer = Requester(core, 2)
    peer.answered(LIMITED.sync_burst, NOW)
    news = signed_entry(7).encode()
    request = encode(SyncRequest(99, (peer.entry, news), last=True))
    outputs = core.receive(peer.peer, request, NOW)
    assert [o.message for o in sent(outputs)] == [SyncBusy(99, LIMITED.sync_refill_ms)]
    assert key(7).peer_id in core.catalog  # only the answer is withheld


def test_a_request_from_a_peer_no_longer_connected_is_merged_but_costs_nothing() -> None:
    """In a join storm a node drops fresh links whose requests are still on the way: no
    answer could be delivered, so none is built and the peer's tokens are kept."""
    core = make_core(1)
    peer = Requester(core, 2)
    core.peer_disconnected(peer.peer, NOW)
    for nonce in range(10):
        outputs = core.receive(peer.peer, encode(SyncRequest(nonce, (peer.entry,), True)), NOW)
        assert not sent(outputs)
    assert peer.peer in core.catalog
    core.peer_connected(peer.peer, NOW, outbound=False)
    assert peer.answered(10, NOW) == LIMITED.sync_burst
    assert core.statistics().syncs_served == LIMITED.sync_burst


@pytest.mark.parametrize(("burst", "refill_ms"), [(1, 250), (4, 2_000), (10, 30_000)])
def test_the_limits_come_from_the_config(burst: int, refill_ms: int) -> None:
    config = DiscoveryConfig(sync_burst=burst, sync_refill_ms=refill_ms)
    peer = Requester(make_core(1, config), 2)
    assert peer.answered(burst + 5, NOW) == burst
    assert peer.ask(NOW) == SyncBusy(peer.nonce, refill_ms)
    assert peer.answered(2, NOW + refill_ms) == 1


def test_the_defaults_answer_every_sync_of_normal_operation() -> None:
    """Normal operation: a sync per new connection, its retries one sync timeout apart, and
    a few on-demand syncs at once; none of it may be refused."""
    config = DiscoveryConfig()
    peer = Requester(make_core(1, config), 2)
    now = NOW
    for _ in range(50):  # an unanswered sync retried forever, one per sync timeout
        assert isinstance(peer.ask(now), SyncResponse)
        now += config.sync_timeout_ms
    # A reconnection (with all its retries) and a few sync_with calls, all at once.
    assert peer.answered(config.sync_attempts + 3, now) == config.sync_attempts + 3


def test_a_refused_sync_fails_at_once_with_the_delay() -> None:
    a, b = make_core(1), make_core(2)
    wire = Wire(a, b)
    wire.connect(a, b)  # a's first sync takes one of b's tokens
    wire.flush()
    for _ in range(LIMITED.sync_burst - 1):
        wire.feed(a, a.sync_with(b.peer_id, NOW))
        wire.flush()
    wire.log.clear()
    wire.feed(a, a.sync_with(b.peer_id, NOW + 100))
    wire.flush(NOW + 100)
    retry = LIMITED.sync_refill_ms - 100
    reason = f"peer {b.peer_id.short()} is busy: retry after {retry} ms"
    assert [o for o in wire.outputs_of(a) if isinstance(o, SyncCompleted | SyncFailed)] == [
        SyncFailed(b.peer_id, reason, retry)
    ]
    assert not sent(wire.outputs_of(b), SyncResponse)
    assert b.statistics().syncs_refused == 1
    assert a.statistics().syncs_failed == 1
    # Nothing stays pending on a's side: no retry, and a new sync_with starts a new sync.
    assert not sent(a.tick(NOW + 100 + 3 * LIMITED.sync_timeout_ms), SyncRequest)
    wire.feed(a, a.sync_with(b.peer_id, NOW + LIMITED.sync_refill_ms))
    wire.flush(NOW + LIMITED.sync_refill_ms)
    assert SyncCompleted(b.peer_id, 0) in wire.outputs_of(a)


def test_a_stray_busy_reply_is_ignored() -> None:
    a, b = make_core(1), make_core(2)
    a.peer_connected(b.peer_id, NOW, outbound=True)  # a sync in flight, nonce unknown here
    outputs: list[Output] = a.receive(b.peer_id, encode(SyncBusy(12345, 10)), NOW)
    assert not [o for o in outputs if isinstance(o, SyncFailed)]
    assert b.peer_id in a.neighbours and a.statistics().syncs_failed == 0


def test_buckets_forget_full_peers_and_survive_a_clock_step_back() -> None:
    buckets = TokenBuckets(burst=2, refill_ms=1_000)
    peers = [key(n).peer_id for n in range(2, 6)]
    for peer in peers:
        assert buckets.take(peer, NOW) is None
    assert len(buckets) == len(peers)
    assert buckets.take(peers[0], NOW + 1_000) is None  # refilled: the others are full again
    assert len(buckets) == 1
    # A wall clock stepping back an hour refuses for at most the refill interval.
    assert buckets.take(peers[0], NOW + 1_000) is None
    assert buckets.take(peers[0], NOW + 1_000) == 1_000
    assert buckets.take(peers[0], NOW - 3_600_000) == 1_000
    assert buckets.take(peers[0], NOW - 3_600_000 + 1_000) is None


@pytest.mark.parametrize("field", ["sync_burst", "sync_refill_ms"])
def test_bad_limits_name_the_field(field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field} must be positive"):
        DiscoveryConfig(**{field: 0})


def test_a_busy_reply_is_small() -> None:
    assert len(encode(SyncBusy(2**63 - 1, 2**32))) < 64
