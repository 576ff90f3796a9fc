"""Consumer-side subscription state (sans I/O): whom to dial, when to retry, when to stop."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.primitives import Digest
from node.streams.channels import ChannelState
from node.streams.config import Backoff, ConsumerConfig
from node.streams.subscriptions import TERMINAL_CODES, Dial, Drop, Subscriptions, SyncCatalog
from node.tickets import JwtTicketBuilder, JwtTicketValidator
from node.transport import codes
from tests.streams.helpers import NOW, STREAM, info, key

SECRET = b"k" * 32
BACKOFF = Backoff(initial=1.0, maximum=8.0, multiplier=2.0, jitter=0.0)


def make(**options: object) -> Subscriptions:
    config = ConsumerConfig(
        stream_id=STREAM,
        datum_type=bytes,
        backoff=BACKOFF,
        **options,  # type: ignore[arg-type]
    )
    return Subscriptions(config, random.Random(1))


def dial_of(actions: list[object]) -> Dial:
    (action,) = actions
    assert isinstance(action, Dial)
    return action


def test_eligible_producers_are_dialled_once() -> None:
    subs = make()
    first = dial_of(subs.peer_seen(info(1), NOW))
    assert first.peer.peer_id == key(1).peer_id
    assert subs.peer_seen(info(1), NOW) == []  # already connecting
    assert subs.peer_seen(info(2, streams=()), NOW) == []  # does not produce the stream
    assert subs.state(key(1).peer_id) is ChannelState.CONNECTING
    subs.connected_to(key(1).peer_id, first.generation)
    assert [p.peer_id for p in subs.connected()] == [key(1).peer_id]


def test_failures_back_off_exponentially_and_reset_after_connecting() -> None:
    subs = make()
    peer = key(1).peer_id
    dial = dial_of(subs.peer_seen(info(1), NOW))
    delays = []
    now = NOW
    for _ in range(5):
        assert subs.closed(peer, dial.generation, None, "unreachable", now) == []
        assert subs.state(peer) is ChannelState.WAITING
        deadline = subs.next_deadline()
        assert deadline is not None
        delays.append(deadline - now)
        assert subs.tick(deadline - 0.01) == []
        now = deadline
        dial = dial_of(subs.tick(now))
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    subs.connected_to(peer, dial.generation)
    subs.closed(peer, dial.generation, codes.STREAM_TOO_SLOW, "lagging", now)
    assert subs.next_deadline() == now + 1.0


def test_unknown_peer_syncs_the_catalog_once_then_backs_off() -> None:
    subs = make()
    peer = key(1).peer_id
    dial = dial_of(subs.peer_seen(info(1), NOW))
    assert subs.closed(peer, dial.generation, codes.UNKNOWN_PEER, "", NOW) == [
        SyncCatalog(peer, dial.generation)
    ]
    retry = dial_of(subs.synced(peer, dial.generation))
    assert subs.closed(peer, retry.generation, codes.UNKNOWN_PEER, "", NOW) == []
    assert subs.state(peer) is ChannelState.WAITING


@pytest.mark.parametrize(
    "code",
    [
        codes.STREAM_NOT_FOUND,
        codes.GRACEFUL_SHUTDOWN,
        codes.DIFFERENT_NETWORK,
        codes.PROTOCOL_VIOLATION,
    ],
)
def test_terminal_codes_wait_for_a_changed_producer_entry(code: int) -> None:
    subs = make()
    peer = key(1).peer_id
    dial = dial_of(subs.peer_seen(info(1), NOW))
    subs.closed(peer, dial.generation, code, "", NOW)
    assert subs.state(peer) is ChannelState.TERMINATED
    assert subs.next_deadline() is None
    assert subs.peer_seen(info(1, update_ms=5), NOW) == []  # a re-announce: same content
    restarted = dial_of(subs.peer_seen(info(1, start_ms=10), NOW))
    assert restarted.generation > dial.generation


def test_not_allowed_retries_on_our_own_change_or_after_the_maximum_backoff() -> None:
    subs = make()
    peer = key(1).peer_id
    dial = dial_of(subs.peer_seen(info(1), NOW))
    subs.closed(peer, dial.generation, codes.STREAM_NOT_ALLOWED, "no", NOW)
    assert subs.state(peer) is ChannelState.TERMINATED
    assert subs.next_deadline() == NOW + BACKOFF.maximum
    again = dial_of(subs.local_entry_changed())
    subs.closed(peer, again.generation, codes.STREAM_NOT_ALLOWED, "still no", NOW)
    dial_of(subs.tick(NOW + BACKOFF.maximum))


def test_reports_about_an_older_generation_are_ignored() -> None:
    subs = make()
    peer = key(1).peer_id
    old = dial_of(subs.peer_seen(info(1), NOW))
    subs.closed(peer, old.generation, None, "", NOW)
    new = dial_of(subs.tick(NOW + 10))
    assert subs.closed(peer, old.generation, codes.GRACEFUL_SHUTDOWN, "", NOW) == []
    subs.connected_to(peer, old.generation)
    assert subs.state(peer) is ChannelState.CONNECTING
    subs.connected_to(peer, new.generation)
    assert subs.state(peer) is ChannelState.CONNECTED


def test_producers_failing_require_are_skipped_and_dropped_when_they_change() -> None:
    eu = Digest.from_name("eu")
    subs = make(require=(lambda p: eu in p.tags,))
    peer = key(1).peer_id
    assert subs.peer_seen(info(1), NOW) == []
    dial = dial_of(subs.peer_seen(info(1, tags=("eu",), update_ms=2), NOW))
    subs.connected_to(peer, dial.generation)
    (drop,) = subs.peer_seen(info(1, update_ms=3), NOW)
    assert isinstance(drop, Drop) and drop.code == codes.STREAM_NOT_ALLOWED
    assert subs.state(peer) is None
    dial_of(subs.peer_seen(info(1, tags=("eu",), update_ms=4), NOW))


def test_departed_and_unadvertised_producers_are_dropped() -> None:
    subs = make()
    dial = dial_of(subs.peer_seen(info(1), NOW))
    subs.connected_to(key(1).peer_id, dial.generation)
    assert subs.peer_departed(key(1).peer_id) == [
        Drop(key(1).peer_id, codes.SUCCESS, "producer left the catalog")
    ]
    assert subs.peer_departed(key(1).peer_id) == []
    dial_of(subs.peer_seen(info(2), NOW))
    (drop,) = subs.peer_seen(info(2, streams=(), update_ms=2), NOW)
    assert isinstance(drop, Drop) and "no longer advertises" in drop.reason


def test_producer_tickets_are_checked_and_expire() -> None:
    validator = JwtTicketValidator({"HS256": SECRET})
    ticket = JwtTicketBuilder(SECRET, "HS256").expires_in(20).mint(key(1).peer_id, now=NOW)
    subs = make(require_ticket=(validator,))
    assert subs.peer_seen(info(1), NOW) == []
    dial = dial_of(subs.peer_seen(info(1, tickets=(ticket,), update_ms=2), NOW))
    subs.connected_to(key(1).peer_id, dial.generation)
    assert subs.next_deadline() == NOW + 20
    (drop,) = subs.tick(NOW + 20)
    assert drop == Drop(key(1).peer_id, codes.STREAM_NOT_ALLOWED, "ticket expired")
    assert subs.peer_seen(info(1, tickets=(ticket,), update_ms=3), NOW + 21) == []


def test_close_drops_open_channels_only() -> None:
    subs = make()
    a = dial_of(subs.peer_seen(info(1), NOW))
    subs.connected_to(key(1).peer_id, a.generation)
    b = dial_of(subs.peer_seen(info(2), NOW))
    subs.closed(key(2).peer_id, b.generation, None, "", NOW)
    assert subs.close() == [Drop(key(1).peer_id, codes.GRACEFUL_SHUTDOWN, "consumer closed")]
    assert list(subs.channels()) == []


def test_backoff_options_are_validated() -> None:
    from node.errors import ConfigError

    with pytest.raises(ConfigError, match="initial <= maximum"):
        Backoff(initial=5, maximum=1)
    with pytest.raises(ConfigError, match="jitter"):
        Backoff(jitter=2)
    rng = random.Random(3)
    delays = [Backoff(initial=1, maximum=4, jitter=0.5).delay(3, rng) for _ in range(50)]
    assert all(4 <= d <= 6 for d in delays) and len(set(delays)) > 1


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_random_histories_keep_the_channel_invariants(seed: int) -> None:
    """Dials only eligible producers, one live channel per producer, timers never stall."""
    rng = random.Random(seed)
    eu = Digest.from_name("eu")
    subs = make(require=(lambda p: eu in p.tags,))
    now = NOW
    versions = dict.fromkeys(range(1, 5), 1)
    live: dict[object, int] = {}  # peer -> generation of its open (dialled) channel
    last_generation = 0
    codes_pool = [None, *TERMINAL_CODES, codes.UNKNOWN_PEER, codes.STREAM_TOO_SLOW]
    for _ in range(150):
        n = rng.randint(1, 4)
        peer_id = key(n).peer_id
        op = rng.random()
        if op < 0.35:
            versions[n] += 1
            tags = ("eu",) if rng.random() < 0.7 else ()
            streams = (STREAM,) if rng.random() < 0.8 else ()
            peer = info(n, tags=tags, streams=streams, update_ms=versions[n])
            actions = subs.peer_seen(peer, now)
        elif op < 0.45:
            actions = subs.peer_departed(peer_id)
        elif op < 0.75 and peer_id in live:
            code = rng.choice(codes_pool)
            actions = subs.closed(peer_id, live.pop(peer_id), code, "", now)
        elif op < 0.85 and peer_id in live:
            subs.connected_to(peer_id, live[peer_id])
            actions = []
        else:
            deadline_before = subs.next_deadline()
            now += rng.uniform(0, 3)
            actions = subs.tick(now)
            after = subs.next_deadline()
            if deadline_before is not None and deadline_before <= now:
                assert after is None or after > now, f"seed {seed}: timer stalled"
        for action in actions:
            if isinstance(action, Dial):
                assert eu in action.peer.tags and STREAM in action.peer.streams, f"seed {seed}"
                assert action.generation > last_generation, f"seed {seed}"
                last_generation = action.generation
                live[action.peer.peer_id] = action.generation
            elif isinstance(action, Drop):
                assert live.pop(action.peer_id, None) is not None, f"seed {seed}: stray drop"
            else:
                assert isinstance(action, SyncCatalog)
                dial = dial_of(subs.synced(action.peer_id, action.generation))
                assert dial.generation > last_generation
                last_generation = dial.generation
                live[action.peer_id] = dial.generation
        for peer_id, generation in live.items():
            assert subs.generation(peer_id) == generation, f"seed {seed}: lost track"
