"""Channel conditions: what they count, and the edge-triggered, re-arming ``when`` API."""

from __future__ import annotations

import asyncio

import pytest

from node.discovery import PeerInfo
from node.errors import ConfigError
from node.primitives import Digest
from node.streams import Condition, minimum_of, with_predicate, with_tags
from node.streams.when import When
from tests.streams.helpers import info


def test_conditions_count_matching_peers() -> None:
    peers = [info(1, tags=("eu", "gpu")), info(2, tags=("eu",)), info(3)]
    assert minimum_of(0).is_met([])
    assert minimum_of(3).is_met(peers) and not minimum_of(4).is_met(peers)
    assert with_tags("eu").minimum_of(2).is_met(peers)
    assert not with_tags("eu", "gpu").minimum_of(2).is_met(peers)
    assert with_tags(Digest.from_name("gpu")).is_met(peers)
    odd = with_predicate(lambda p: p.peer_id == peers[2].peer_id)
    assert odd.is_met(peers) and not odd.with_tags("eu").is_met(peers)
    assert Condition() == minimum_of(1)


def test_condition_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="minimum_of"):
        minimum_of(-1)
    with pytest.raises(ConfigError, match="callable"):
        with_predicate("eu")  # type: ignore[arg-type]


async def test_online_and_offline_are_level_triggered() -> None:
    peers: list[PeerInfo] = []
    when = When(lambda: peers, minimum_of(2))
    assert not when.is_online
    await asyncio.wait_for(when.offline(), 1)
    online = asyncio.ensure_future(when.online())
    peers.append(info(1))
    when.changed()
    assert not when.is_online  # one of two: what online() waits for does not hold
    assert not online.done()
    peers.append(info(2))
    when.changed()
    await asyncio.wait_for(online, 1)
    await asyncio.wait_for(when.online(), 1)


async def test_subscribed_rearms_on_each_unmet_to_met_edge() -> None:
    peers: list[PeerInfo] = []
    when = When(lambda: peers, minimum_of(1))
    subscribed = when.subscribed(minimum_of=1, tags="eu")
    unsubscribed = when.unsubscribed()
    await asyncio.wait_for(unsubscribed, 1)  # met from the start: the first await returns
    waiter = asyncio.ensure_future(asyncio.wait_for(subscribed, 5))
    peers.append(info(1))
    when.changed()
    assert not subscribed.is_met()  # a peer without the tag does not count
    assert not waiter.done()
    peers.append(info(2, tags=("eu",)))
    when.changed()
    await waiter
    assert subscribed.is_met()
    second = asyncio.ensure_future(asyncio.wait_for(subscribed, 5))
    await asyncio.sleep(0.01)
    assert not second.done()  # still met: no new edge yet
    # An unmet -> met edge between two awaits is not lost.
    peers.pop()
    when.changed()
    peers.append(info(3, tags=("eu",)))
    when.changed()
    await second
    never = asyncio.ensure_future(asyncio.wait_for(unsubscribed, 0.05))
    with pytest.raises(TimeoutError):
        await never  # its edge was consumed; peers are still connected
