"""A peer SIGKILLed and restarted with the same key is re-linked at once, not after QUIC's
idle timeout: the survivor's link to the dead incarnation is stale, the new one wins.

The survivor tells the two apart by the incarnation (``start_ms``) each link's peer shows in
its first sync message; the first tests pin that the core always shows it there. A node the
restarted peer does not dial learns of the restart from the catalog (``PeerRestarted``) and
closes what led to the dead process: its discovery link, pooled and stream connections.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from node import Network, SecretKey
from node.discovery import (
    Dial,
    DiscoveryCore,
    Gossip,
    LocalEntry,
    Output,
    PeerRestarted,
    Ping,
    Pong,
    SendMessage,
    SyncCompleted,
    SyncFailed,
    SyncRequest,
    SyncResponse,
)
from node.discovery.messages import sender_start_ms
from node.discovery.service import DISCOVERY_ALPN, config_with_ttl
from node.primitives import PeerId, encode
from node.transport import Connection, PeerAddr, SocketAddr
from tests.conftest import deadline, wait_until
from tests.discovery._lone_node import STREAM, Incarnation
from tests.discovery.conftest import NETWORK as CORE_NETWORK
from tests.discovery.conftest import NOW, key, signed_entry
from tests.discovery.test_core import CONFIG, Wire, make_core, sent

NETWORK = "rejoin-tests"
_REPO = Path(__file__).resolve().parents[2]
# Well under the transport's 30 s idle timeout, after which a dead link ends by itself.
REJOIN_S = 5.0


def test_the_first_sync_message_either_way_shows_the_senders_incarnation() -> None:
    dialler, acceptor = make_core(1), make_core(2)
    acceptor.feed(make_core(3).local_entry, NOW)  # so the response carries more than itself
    wire = Wire(dialler, acceptor)
    wire.connect(dialler, acceptor)
    wire.flush()
    for core in (dialler, acceptor):
        first = next(
            out
            for source, out in wire.log
            if source == core.peer_id and isinstance(out, SendMessage)
        )
        assert isinstance(first.message, SyncRequest | SyncResponse)
        assert sender_start_ms(core.peer_id, first.message) == core.local_entry.entry.start_ms


def test_only_the_senders_own_valid_entry_shows_its_incarnation() -> None:
    own, other = signed_entry(1, NOW + 5).encode(), signed_entry(2).encode()
    sender = key(1).peer_id
    assert sender_start_ms(sender, Pong(7, own)) == NOW + 5
    assert sender_start_ms(sender, SyncResponse(7, (own, other), last=True)) == NOW + 5
    assert sender_start_ms(sender, SyncRequest(7, (other, own), last=True)) is None  # a relay
    assert sender_start_ms(sender, SyncRequest(7, (), last=True)) is None
    assert sender_start_ms(sender, Gossip(entries=(own,))) is None
    assert sender_start_ms(sender, Ping(7)) is None
    tampered = bytearray(own)
    tampered[len(tampered) // 2] ^= 0x01
    assert sender_start_ms(sender, Pong(7, bytes(tampered))) is None


def _restarts(outputs: list[Output]) -> list[PeerRestarted]:
    return [o for o in outputs if isinstance(o, PeerRestarted)]


def _incarnation(n: int, start_ms: int, addrs: tuple[str, ...] | None = None) -> DiscoveryCore:
    """Peer ``n``'s process started at ``start_ms`` (same key as every other one)."""
    return DiscoveryCore(
        key(n),
        CORE_NETWORK,
        now_ms=start_ms,
        rng=random.Random(start_ms),
        config=CONFIG,
        addrs=(f"10.0.0.{n}:7400",) if addrs is None else addrs,
    )


def test_only_an_entry_of_a_later_incarnation_is_reported_as_a_restart() -> None:
    core = make_core(1)
    peer = key(2).peer_id
    old = LocalEntry(key(2), CORE_NETWORK, NOW, addrs=("10.0.0.2:7400",))
    assert not _restarts(core.feed(old.signed, NOW))
    assert not _restarts(core.feed(old.refresh(NOW + 10), NOW + 10))  # a re-announce
    new = _incarnation(2, NOW + 20).local_entry.encode()
    gossip = encode(Gossip(entries=(new,)))
    outputs = core.receive(key(3).peer_id, gossip, NOW + 20)  # relayed by anyone
    assert _restarts(outputs) == [PeerRestarted(peer, NOW + 20)]
    assert not _restarts(core.receive(key(3).peer_id, gossip, NOW + 30))  # heard already
    older = LocalEntry(key(2), CORE_NETWORK, NOW + 5, addrs=("10.0.0.2:7400",)).refresh(NOW + 40)
    assert not _restarts(core.feed(older, NOW + 40))  # a newer version of an older process


def test_a_neighbour_whose_stale_link_closed_is_redialled_and_its_sync_runs_again() -> None:
    survivor, dead = make_core(1), _incarnation(2, NOW)
    peer = dead.peer_id
    first = Wire(survivor, dead)
    first.connect(survivor, dead)
    first.flush()
    survivor.sync_with(peer, NOW + 1)  # in flight when the process dies
    restarted = _incarnation(2, NOW + 100)
    assert _restarts(survivor.feed(restarted.local_entry, NOW + 100)) == [
        PeerRestarted(peer, NOW + 100)
    ]

    outputs = survivor.stale_link_closed(peer, NOW + 100)
    assert Dial(peer, ("10.0.0.2:7400",)) in outputs
    assert peer not in survivor.neighbours
    assert not [o for o in outputs if isinstance(o, SyncFailed)], "the sync waits for the redial"
    wire = Wire(survivor, restarted)
    wire.connect(survivor, restarted, NOW + 150)
    wire.flush(NOW + 150)
    assert peer in survivor.neighbours
    assert len(sent(wire.outputs_of(survivor), SyncRequest)) == 1  # one sync serves both
    assert [o for o in wire.outputs_of(survivor) if isinstance(o, SyncCompleted)] == [
        SyncCompleted(peer, 0)
    ]


def test_a_stale_link_to_a_peer_without_an_address_fails_its_sync() -> None:
    survivor, dead = make_core(1), _incarnation(2, NOW, addrs=())
    peer = dead.peer_id
    Wire(survivor, dead).connect(dead, survivor)  # it dialled us: we know no address
    survivor.feed(dead.local_entry, NOW)
    survivor.sync_with(peer, NOW + 1)
    survivor.feed(_incarnation(2, NOW + 100, addrs=()).local_entry, NOW + 100)
    outputs = survivor.stale_link_closed(peer, NOW + 100)
    assert not [o for o in outputs if isinstance(o, Dial)]
    assert [o for o in outputs if isinstance(o, SyncFailed)] == [
        SyncFailed(peer, "connection closed before the sync finished")
    ]


async def test_nodes_dialling_each_other_at_once_keep_the_same_single_link() -> None:
    async with (
        Network.create(NETWORK, discovery=config_with_ttl(300.0)) as a,
        Network.create(NETWORK, discovery=config_with_ttl(300.0)) as b,
    ):
        a.discovery.add_hint(b.peer_id, (str(b.local_addr),))
        b.discovery.add_hint(a.peer_id, (str(a.local_addr),))

        def links(net: Network) -> list[Connection]:
            return [c for c in net.endpoint.connections() if c.alpn == DISCOVERY_ALPN]

        await wait_until(
            lambda: (
                len(links(a)) == len(links(b)) == 1
                and b.peer_id in a.discovery.neighbours
                and a.peer_id in b.discovery.neighbours
            ),
            10,
            "one discovery link each",
        )
        (kept_by_a,) = links(a)
        (kept_by_b,) = links(b)
        assert kept_by_a.is_dialer != kept_by_b.is_dialer, "both ends keep the same connection"
        assert await asyncio.wait_for(a.discovery.sync_with(b.peer_id), deadline(5)) >= 0
        assert await asyncio.wait_for(b.discovery.sync_with(a.peer_id), deadline(5)) >= 0


def _key_ordered(survivor: PeerId, *, lower: bool) -> SecretKey:
    """A key whose peer id sorts below (or above) ``survivor``: the duplicate-link tie-break
    keeps a different link in each case."""
    n = 0
    while True:
        n += 1
        candidate = SecretKey.from_seed(n.to_bytes(32, "big"))
        if (candidate.peer_id < survivor) == lower:
            return candidate


@asynccontextmanager
async def _node_process(
    key_file: Path, bind: str, seed: Network, *, lone: bool = False
) -> AsyncIterator[tuple[asyncio.subprocess.Process, SocketAddr]]:
    """``mosaik node run`` in its own process (``lone``: a node that dials only ``seed``, see
    ``_lone_node``); yields it and its bound address once ready."""
    command = (
        ("-m", "tests.discovery._lone_node", str(key_file), bind, str(seed.address), NETWORK)
        if lone
        else ("-m", "node", "node", "run", "--secret-file", str(key_file), "--bind", bind,
              "--bootstrap", str(seed.address))
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        cwd=_REPO,
        env={**os.environ, "MOSAIK_NETWORK": NETWORK},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), deadline(15))).decode()
        match = re.search(r"address=(\S+)", line)
        assert match, line
        yield proc, SocketAddr.parse(match.group(1))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _start_ms(seed: Network, peer: PeerId) -> int | None:
    info = seed.discovery.peer_info(peer)
    return None if info is None else info.entry.start_ms


@pytest.mark.parametrize("child_sorts_lower", [True, False], ids=["child-lower", "child-higher"])
async def test_sigkilled_peer_restarted_with_its_key_is_relinked_within_a_round_trip(
    tmp_path: Path, child_sorts_lower: bool
) -> None:
    async with Network.create(NETWORK, discovery=config_with_ttl(300.0)) as seed:
        child_key = _key_ordered(seed.peer_id, lower=child_sorts_lower)
        key_file = tmp_path / "child.key"
        child_key.to_file(key_file)
        child = child_key.peer_id

        async with _node_process(key_file, "127.0.0.1:0", seed) as (proc, bound):
            await wait_until(lambda: child in seed.discovery.neighbours, 15, "child linked")
            await asyncio.wait_for(seed.discovery.sync_with(child), deadline(5))
            first_start = _start_ms(seed, child)
            assert first_start is not None
            proc.send_signal(signal.SIGKILL)  # no departure notice, no QUIC close
            await proc.wait()
        assert child in seed.discovery.neighbours, "the dead link is still held"

        # The restart takes the same key and port, as a supervised service would.
        async with _node_process(key_file, str(bound), seed):
            restarted_at = time.monotonic()
            await wait_until(
                lambda: (_start_ms(seed, child) or 0) > first_start,
                REJOIN_S,
                "the survivor's catalog holds the new incarnation",
            )
            # A round trip over the survivor's link proves it reaches the live process.
            accepted = await asyncio.wait_for(seed.discovery.sync_with(child), deadline(REJOIN_S))
            rejoin_s = time.monotonic() - restarted_at
            assert accepted >= 0
            assert child in seed.discovery.neighbours
            assert rejoin_s < deadline(REJOIN_S), f"rejoin took {rejoin_s:.2f} s"


def _links_to(net: Network, peer: PeerId) -> list[Connection]:
    return [
        conn
        for conn in net.endpoint.connections()
        if conn.alpn == DISCOVERY_ALPN and conn.peer_id == peer
    ]


async def test_a_peer_the_restarted_node_does_not_dial_drops_what_led_to_its_dead_process(
    tmp_path: Path,
) -> None:
    """B learns of C's restart only from A's gossip (C dials nobody but A): its discovery link,
    pooled ping connection and stream subscription to the dead process must not wait for
    QUIC's idle timeout."""
    config = config_with_ttl(300.0)
    async with (
        Network.create(NETWORK, discovery=config) as seed,
        Network.create(NETWORK, discovery=config, bootstrap=[seed.address]) as survivor,
    ):
        child_key = SecretKey.generate()
        key_file = tmp_path / "child.key"
        child_key.to_file(key_file)
        child = child_key.peer_id
        incarnations = survivor.streams.consume(Incarnation, stream_id=STREAM)

        async with _node_process(key_file, "127.0.0.1:0", seed, lone=True) as (proc, bound):
            await wait_until(lambda: child in survivor.discovery.neighbours, 15, "B dialled C")
            await asyncio.wait_for(survivor.discovery.sync_with(child), deadline(5))
            first_start = _start_ms(survivor, child)
            assert first_start is not None
            address = PeerAddr(child, bound)
            await asyncio.wait_for(survivor.ping(address), deadline(5))
            (old_link,) = _links_to(survivor, child)
            old_datum = await asyncio.wait_for(incarnations.recv(), deadline(10))
            assert old_datum.start_ms == first_start
            proc.send_signal(signal.SIGKILL)  # no departure notice, no QUIC close
            await proc.wait()
        assert not old_link.closed, "the dead link is still held"

        async with _node_process(key_file, str(bound), seed, lone=True):
            restarted_at = time.monotonic()
            await wait_until(
                lambda: (_start_ms(survivor, child) or 0) > first_start,
                REJOIN_S,
                "B's catalog holds the new incarnation (through A)",
            )
            new_start = _start_ms(survivor, child)
            assert old_link.closed, "B still holds its link to the dead process"
            await wait_until(
                lambda: child in survivor.discovery.neighbours and bool(_links_to(survivor, child)),
                REJOIN_S,
                "B linked to the new process",
            )
            assert (
                await asyncio.wait_for(survivor.discovery.sync_with(child), deadline(REJOIN_S)) >= 0
            )
            relinked_s = time.monotonic() - restarted_at
            # The pooled ping connection to the dead process is gone: this one dials afresh.
            await asyncio.wait_for(survivor.ping(address), deadline(REJOIN_S))
            pinged_s = time.monotonic() - restarted_at
            async with asyncio.timeout(deadline(REJOIN_S)):
                while (await incarnations.recv()).start_ms != new_start:
                    pass  # datums the old process sent before it died
            resubscribed_s = time.monotonic() - restarted_at
            assert resubscribed_s < deadline(REJOIN_S), f"recovery took {resubscribed_s:.2f} s"
            print(  # the numbers behind the assertions, for -s runs
                f"relinked {relinked_s:.3f} s, pinged {pinged_s:.3f} s, "
                f"resubscribed {resubscribed_s:.3f} s after the restart"
            )
