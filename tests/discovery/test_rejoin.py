"""A peer SIGKILLed and restarted with the same key is re-linked at once, not after QUIC's
idle timeout: the survivor's link to the dead incarnation is stale, the new one wins.

The survivor tells the two apart by the incarnation (``start_ms``) each link's peer shows in
its first sync message; the first tests pin that the core always shows it there.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from node import Network, SecretKey
from node.discovery import Gossip, Ping, Pong, SendMessage, SyncRequest, SyncResponse
from node.discovery.messages import sender_start_ms
from node.discovery.service import DISCOVERY_ALPN, config_with_ttl
from node.primitives import PeerId
from node.transport import Connection, SocketAddr
from tests.conftest import deadline, wait_until
from tests.discovery.conftest import NOW, key, signed_entry
from tests.discovery.test_core import Wire, make_core

NETWORK = "rejoin-tests"
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
    key_file: Path, bind: str, seed: Network
) -> AsyncIterator[tuple[asyncio.subprocess.Process, SocketAddr]]:
    """``mosaik node run`` in its own process; yields it and its bound address once ready."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node", "node", "run", "--secret-file", str(key_file),
        "--bind", bind, "--bootstrap", str(seed.address),
        env={**os.environ, "MOSAIK_NETWORK": NETWORK},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
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
