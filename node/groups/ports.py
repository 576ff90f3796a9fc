"""What a group runtime and its collaborators see of each other: small Protocols.

``GroupRuntime`` implements ``ExchangeHost`` (for ``exchange``) and ``ClientHost`` (for
``client``); neither module imports the runtime. ``DiscoveryView`` and ``NodeContext`` are
what a runtime sees of the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from node.discovery import CatalogSnapshot, PeerInfo
from node.groups.config import ConsensusConfig
from node.groups.inputs import Input
from node.groups.links import Connect
from node.groups.pending import Pending
from node.groups.stats import GroupStats
from node.groups.wire import ClusterState
from node.primitives import PeerId


class DiscoveryView(Protocol):
    """The part of ``net.discovery`` a group uses."""

    @property
    def catalog(self) -> CatalogSnapshot: ...

    def peer_info(self, peer: PeerId) -> PeerInfo | None: ...

    async def sync_with(self, peer: PeerId) -> int: ...

    async def changed(self) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeContext:
    peer_id: PeerId
    discovery: DiscoveryView
    connect: Connect
    max_frame: int


class ExchangeHost(Protocol):
    """What the peer-facing ``Exchange`` asks of its group runtime."""

    @property
    def cluster(self) -> ClusterState:
        """Our lineage, as we tell it to peers."""
        ...

    def accepts(self, peer: PeerId) -> bool:
        """Whether ``peer``'s lineage, as it last told it, is ours (its messages may be
        stepped)."""
        ...

    def note_cluster(self, peer: PeerId, state: ClusterState) -> None:
        """``peer`` told us its lineage."""
        ...

    def catalog_changed(self) -> None: ...

    def submit(self, item: Input) -> None:
        """Queue ``item`` for the driver."""
        ...


class ClientHost(Protocol):
    """What ``client`` (commands and strong reads) asks of its group runtime."""

    @property
    def config(self) -> ConsensusConfig: ...

    @property
    def peer_id(self) -> PeerId: ...

    @property
    def leader(self) -> PeerId | None: ...

    @property
    def applied(self) -> int: ...

    @property
    def pending(self) -> Pending:
        """The futures of calls waiting on the log, resolved by the driver."""
        ...

    @property
    def stats(self) -> GroupStats: ...

    def check_running(self) -> None:
        """``GroupTerminated`` if the group closed on this node, ``GroupStopped`` if it
        stopped (and is retrying)."""
        ...

    async def wait_for(self, condition: Callable[[], bool]) -> None: ...

    def submit(self, item: Input) -> None:
        """Queue ``item`` for the driver."""
        ...

    def linked(self, peer: PeerId) -> bool:
        """Whether we keep a link to ``peer`` (it may still be connecting)."""
        ...

    def send(self, peer: PeerId, body: bytes) -> bool:
        """Queue an encoded frame for ``peer``; False if there is no link to it."""
        ...
