"""Collections on real nodes over loopback (the groups runtime with fast timing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest

from node.collections import Collections, GroupOptions
from node.network import Network
from tests.groups.live import FAST, MakeNode

FAST_GROUP = GroupOptions(consensus=FAST)
COMPACTING = GroupOptions(consensus=msgspec.structs.replace(FAST, snapshot_every=8))

Node = Callable[..., Awaitable[tuple[Network, Collections]]]


def collections_of(net: Network) -> Collections:
    """``net.collections`` once the lead wires it into ``Network``; until then our own."""
    existing = getattr(net, "collections", None)
    if existing is None:
        existing = Collections(net)
        net.collections = existing  # type: ignore[attr-defined]
    return existing


@pytest.fixture
async def node(make_node: MakeNode) -> AsyncIterator[Node]:
    """A new node on loopback and its collections (closed before the node)."""
    made: list[Collections] = []

    async def make(**options: Any) -> tuple[Network, Collections]:
        net = await make_node(**options)
        collections = collections_of(net)
        made.append(collections)
        return net, collections

    yield make
    for collections in made:
        await collections.close()
