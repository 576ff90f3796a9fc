"""The discovery core driven by hand: inputs in, typed outputs out, clock set by the test."""

from __future__ import annotations

import logging
import random
import types
from collections import deque

import pytest

import node.discovery as discovery
from node.discovery import (
    AddTags,
    Dial,
    Disconnect,
    DisconnectReason,
    DiscoveryConfig,
    DiscoveryCore,
    EmitEvent,
    Gossip,
    IHave,
    IWant,
    Output,
    PeerDeparted,
    PeerDiscovered,
    Ping,
    Pong,
    RumourId,
    ScheduleTimer,
    SendMessage,
    SyncCompleted,
    SyncFailed,
    SyncRequest,
    SyncResponse,
)
from node.errors import ConfigError
from node.primitives import Digest, PeerId, encode
from tests.discovery.conftest import NETWORK, NOW, key, signed_entry

CONFIG = DiscoveryConfig(fanout=1, target_neighbours=2, max_neighbours=3)


def make_core(n: int, config: DiscoveryConfig = CONFIG) -> DiscoveryCore:
    return DiscoveryCore(
        key(n),
        NETWORK,
        now_ms=NOW,
        rng=random.Random(n),
        config=config,
        addrs=(f"10.0.0.{n}:7400",),
    )


def sent(outputs: list[Output], kind: type | None = None) -> list[SendMessage]:
    return [
        o
        for o in outputs
        if isinstance(o, SendMessage) and (kind is None or isinstance(o.message, kind))
    ]


def events(outputs: list[Output]) -> list[object]:
    return [o.event for o in outputs if isinstance(o, EmitEvent)]


class Wire:
    """Connects cores and delivers their messages in order, instantly, at the test's clock."""

    def __init__(self, *cores: DiscoveryCore) -> None:
        self.cores = {core.peer_id: core for core in cores}
        self.queue: deque[tuple[PeerId, SendMessage]] = deque()
        self.log: list[tuple[PeerId, Output]] = []

    def feed(self, source: DiscoveryCore, outputs: list[Output]) -> None:
        for output in outputs:
            self.log.append((source.peer_id, output))
            if isinstance(output, SendMessage) and output.peer in self.cores:
                self.queue.append((source.peer_id, output))

    def connect(self, a: DiscoveryCore, b: DiscoveryCore, now: int = NOW) -> None:
        self.feed(b, b.peer_connected(a.peer_id, now, outbound=False))
        self.feed(a, a.peer_connected(b.peer_id, now, outbound=True))

    def flush(self, now: int = NOW) -> None:
        while self.queue:
            source, output = self.queue.popleft()
            target = self.cores[output.peer]
            self.feed(target, target.receive(source, encode(output.message), now))

    def outputs_of(self, core: DiscoveryCore) -> list[Output]:
        return [output for peer, output in self.log if peer == core.peer_id]


def test_first_tick_dials_the_bootstrap_peer_and_arms_a_timer() -> None:
    core = make_core(1)
    seed = key(9).peer_id
    core.add_bootstrap(seed, ("10.0.0.9:7400",), NOW)
    outputs = core.tick(NOW)
    assert Dial(seed, ("10.0.0.9:7400",)) in outputs
    assert isinstance(outputs[-1], ScheduleTimer) and outputs[-1].at_ms > NOW
    assert core.statistics().dialing == 1


def test_a_new_connection_syncs_both_catalogs() -> None:
    a, b, c = make_core(1), make_core(2), make_core(3)
    b.feed(c.local_entry, NOW)  # b already knows c
    wire = Wire(a, b)
    wire.connect(a, b)
    assert [o.message for o in sent(wire.outputs_of(a), SyncRequest)]  # the dialler initiates
    assert not sent(wire.outputs_of(b), SyncRequest)
    wire.flush()
    assert set(a.catalog.peer_ids()) == {b.peer_id, c.peer_id}
    assert set(b.catalog.peer_ids()) == {a.peer_id, c.peer_id}
    assert SyncCompleted(b.peer_id, 2) in wire.outputs_of(a)
    assert PeerDiscovered(c.local_entry.entry) in events(wire.outputs_of(a))
    response = sent(wire.outputs_of(b), SyncResponse)[0].message
    assert isinstance(response, SyncResponse)
    assert a.local_entry.encode() not in response.entries  # what a sent is not echoed back
    stats = a.statistics()
    assert (stats.syncs_started, stats.syncs_completed, stats.neighbours) == (1, 1, 1)
    assert b.statistics().syncs_served == 1


def test_malformed_frames_are_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    core = make_core(1)
    peer = key(2).peer_id
    caplog.set_level(logging.WARNING, logger="node.discovery")
    for garbage in (b"", b"\xff\x00garbage", encode({"type": "gossip", "entries": [7]})):
        assert not sent(core.receive(peer, garbage, NOW))
    assert core.statistics().messages_dropped == 3
    assert "dropped discovery message from " + peer.short() in caplog.text


def test_mutated_frames_never_raise() -> None:
    core = make_core(1)
    peer = key(2).peer_id
    entry = signed_entry(2).encode()
    valid = [
        encode(Gossip(entries=(entry,))),
        encode(IHave((RumourId(peer, NOW, NOW, departed=False),))),
        encode(SyncRequest(5, (entry,), last=True)),
        encode(Pong(1, entry)),
    ]
    rng = random.Random(7)
    for _ in range(3000):
        frame = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 3)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        core.receive(peer, bytes(frame), NOW)
    stats = core.statistics()
    assert stats.messages_dropped + stats.messages_received == 3000
    assert stats.messages_dropped > 0 and stats.entries_rejected > 0


def test_tampered_entries_in_gossip_are_dropped_with_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = make_core(1)
    good = signed_entry(2).encode()
    tampered = bytearray(good)
    tampered[-3] ^= 0x10
    caplog.set_level(logging.WARNING, logger="node.discovery")
    outputs = core.receive(key(3).peer_id, encode(Gossip(entries=(bytes(tampered), good))), NOW)
    assert events(outputs) == [PeerDiscovered(signed_entry(2).entry)]  # the good one survives
    assert core.statistics().entries_rejected == 1
    assert "dropped peer entry from peer" in caplog.text and "signature" in caplog.text
    other = signed_entry(4, network=Digest.from_name("elsewhere")).encode()
    core.receive(key(3).peer_id, encode(Gossip(entries=(other,))), NOW)
    assert "from another network" in caplog.text
    assert len(core.catalog) == 1


def test_local_changes_go_to_every_neighbour_at_once() -> None:
    a, b, c = make_core(1), make_core(2), make_core(3)
    wire = Wire(a, b, c)
    wire.connect(a, b)
    wire.connect(a, c)
    wire.flush()
    outputs = a.update_local(AddTags(frozenset({Digest.from_name("matcher")})), NOW + 1)
    outputs += a.tick(NOW + 1)
    gossip = sent(outputs, Gossip)
    assert {g.peer for g in gossip} == {b.peer_id, c.peer_id}  # fanout 1, but local news is eager
    assert all(a.local_entry.encode() in g.message.entries for g in gossip)  # type: ignore[union-attr]


def test_relayed_rumours_go_in_full_to_fanout_neighbours_and_as_ids_to_the_rest() -> None:
    a = make_core(1)
    neighbours = [key(n).peer_id for n in (2, 3, 4)]
    for peer in neighbours:
        a.peer_connected(peer, NOW, outbound=False)
    news = signed_entry(5)
    a.receive(neighbours[0], encode(Gossip(entries=(news.encode(),))), NOW)
    outputs = a.tick(NOW)
    full = [o.peer for o in sent(outputs, Gossip)]
    ids = [o for o in sent(outputs, IHave)]
    assert neighbours[0] not in full + [o.peer for o in ids]  # not back to where it came from
    assert len(full) == 1 and len(ids) == 1  # fanout 1, the other neighbour gets the id
    assert ids[0].message == IHave((RumourId(news.peer_id, *news.version, departed=False),))
    # The next rumour waits for the next round.
    a.receive(neighbours[0], encode(Gossip(entries=(signed_entry(6).encode(),))), NOW + 1)
    assert not sent(a.tick(NOW + 1), Gossip)
    assert sent(a.tick(NOW + CONFIG.gossip_interval_ms), Gossip)


def test_rumours_announced_by_id_are_pulled_after_the_graft_timeout() -> None:
    a, b = make_core(1), make_core(2)
    wire = Wire(a, b)
    wire.connect(a, b)
    wire.flush()
    news = signed_entry(5)
    b.feed(news, NOW)
    rumour = RumourId(news.peer_id, *news.version, departed=False)
    assert not sent(a.receive(b.peer_id, encode(IHave((rumour,))), NOW), IWant)
    assert not sent(a.tick(NOW + CONFIG.graft_timeout_ms - 1), IWant)
    pulls = sent(a.tick(NOW + CONFIG.graft_timeout_ms), IWant)
    assert [p.message for p in pulls] == [IWant((rumour,))]
    wire.feed(a, pulls)  # type: ignore[arg-type]
    wire.flush(NOW + CONFIG.graft_timeout_ms)
    assert news.peer_id in a.catalog
    # An id of something already held is not pulled.
    a.receive(b.peer_id, encode(IHave((rumour,))), NOW + 1_000)
    assert not sent(a.tick(NOW + 5_000), IWant)


def test_the_neighbour_view_is_bounded() -> None:
    core = make_core(1)
    peers = [key(n).peer_id for n in range(2, 8)]
    outputs: list[Output] = []
    for peer in peers:
        outputs += core.peer_connected(peer, NOW, outbound=False)
    # Fresh links are kept until they have synced (a joiner must learn something first) ...
    assert len(core.neighbours) == 6
    for peer in peers:  # ... which they do, as initiators
        outputs += core.receive(peer, encode(SyncRequest(1, (), last=True)), NOW)
    dropped = [o for o in outputs if isinstance(o, Disconnect)]
    assert len(core.neighbours) == CONFIG.max_neighbours
    assert {d.reason for d in dropped} == {DisconnectReason.VIEW_FULL} and len(dropped) == 3
    # Beyond twice the maximum even unsettled links go.
    for n in range(10, 20):
        core.peer_connected(key(n).peer_id, NOW + 2, outbound=False)
    assert len(core.neighbours) == 2 * CONFIG.max_neighbours


def test_a_lone_node_rejoins_through_its_catalog() -> None:
    core = make_core(1)
    for n in (2, 3, 4):
        core.feed(signed_entry(n), NOW)
    core.tick(NOW)  # dials two of them (target 2)
    for n in (2, 3, 4):
        core.dial_failed(key(n).peer_id, NOW)
    assert core.statistics().dialing == 0
    dials = [o for o in core.tick(NOW + 2_000) if isinstance(o, Dial)]  # after the backoff
    assert len(dials) == CONFIG.target_neighbours
    assert all(d.addrs for d in dials)


def test_sync_with_reports_its_end() -> None:
    a, b = make_core(1), make_core(2)
    stranger = key(7).peer_id
    assert a.sync_with(stranger, NOW)[0] == SyncFailed(stranger, "no known address")
    a.feed(b.local_entry, NOW)
    assert Dial(b.peer_id, ("10.0.0.2:7400",)) in a.sync_with(b.peer_id, NOW)
    failed = a.dial_failed(b.peer_id, NOW + 10)
    assert SyncFailed(b.peer_id, "dial failed") in failed
    wire = Wire(a, b)
    wire.connect(a, b, NOW + 20)
    wire.feed(a, a.sync_with(b.peer_id, NOW + 20))  # one in flight: not started twice
    assert len(sent(wire.outputs_of(a), SyncRequest)) == 1
    wire.flush(NOW + 20)
    assert SyncCompleted(b.peer_id, 0) in wire.outputs_of(a)


def test_an_unanswered_sync_is_retried_then_fails() -> None:
    a = make_core(1)
    peer = key(2).peer_id
    outputs = a.peer_connected(peer, NOW, outbound=True)
    assert len(sent(outputs, SyncRequest)) == 1
    now = NOW
    for _ in range(CONFIG.sync_attempts - 1):
        now += CONFIG.sync_timeout_ms
        assert len(sent(a.tick(now), SyncRequest)) == 1
    now += CONFIG.sync_timeout_ms
    failed = [o for o in a.tick(now) if isinstance(o, SyncFailed)]
    assert failed == [SyncFailed(peer, f"no answer after {CONFIG.sync_attempts} attempt(s)")]


def test_pings_measure_rtt_with_the_given_clock() -> None:
    a, b = make_core(1), make_core(2)
    a.feed(b.local_entry, NOW)
    a.peer_connected(b.peer_id, NOW, outbound=False)
    pings = sent(a.tick(NOW), Ping)
    assert len(pings) == 1
    pong = sent(b.receive(a.peer_id, encode(pings[0].message), NOW + 20), Pong)[0]
    a.receive(b.peer_id, encode(pong.message), NOW + 40)
    assert a.catalog.get(b.peer_id).rtt_ms == 40  # type: ignore[union-attr]
    assert a.snapshot(max_rtt_ms=50).get(b.peer_id) is not None
    assert a.snapshot(max_rtt_ms=30).get(b.peer_id) is None


def test_reannounce_refreshes_the_entry_with_jitter() -> None:
    core = make_core(1)
    core.peer_connected(key(2).peer_id, NOW, outbound=False)
    version = core.local_entry.version
    interval = CONFIG.announce_interval_ms
    core.tick(NOW + interval // 2 - 1)  # earliest possible is 22.5 s
    assert core.local_entry.version == version
    outputs = core.tick(NOW + interval * 3 // 2)  # latest possible is 67.5 s
    assert core.local_entry.version > version
    assert core.local_entry.entry.same_content(make_core(1).local_entry.entry)
    assert any(core.local_entry.encode() in o.message.entries for o in sent(outputs, Gossip))  # type: ignore[union-attr]


def test_shutdown_announces_the_departure_and_disconnects() -> None:
    a, b = make_core(1), make_core(2)
    wire = Wire(a, b)
    wire.connect(a, b)
    wire.flush()
    outputs = a.shutdown(NOW + 5)
    assert [type(o) for o in outputs] == [SendMessage, Disconnect]
    assert outputs[1] == Disconnect(b.peer_id, DisconnectReason.SHUTDOWN)
    wire.feed(a, outputs)
    wire.flush(NOW + 6)
    assert a.peer_id not in b.catalog
    departed = [e for e in events(wire.outputs_of(b)) if isinstance(e, PeerDeparted)]
    assert departed and departed[0].peer_id == a.peer_id
    assert a.closed and a.tick(NOW + 10) == [] and a.next_deadline() is None


def test_a_node_connected_to_itself_hangs_up() -> None:
    core = make_core(1)
    outputs = core.peer_connected(core.peer_id, NOW, outbound=True)
    assert Disconnect(core.peer_id, DisconnectReason.SELF) in outputs
    assert core.neighbours == ()


def test_expired_peers_are_purged_on_tick() -> None:
    core = make_core(1)
    core.feed(signed_entry(2), NOW)
    assert core.next_deadline() is not None
    outputs = core.tick(NOW + CONFIG.ttl_ms)
    assert [type(e) for e in events(outputs)] == [PeerDeparted]
    assert core.statistics().peers_departed == 1


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"fanout": 0}, "fanout must be positive"),
        ({"max_neighbours": 2, "target_neighbours": 4}, "below target_neighbours"),
        ({"announce_jitter": 1.5}, "announce_jitter must be in"),
        ({"max_message_bytes": 1000}, "max_message_bytes"),
    ],
)
def test_bad_configuration_names_the_field(changes: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DiscoveryConfig(**changes)  # type: ignore[arg-type]


def test_exported_names() -> None:
    public = {
        name
        for name, value in vars(discovery).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(discovery.__all__) == public
