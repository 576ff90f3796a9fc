"""A deterministic network simulation for the discovery core (tests and benchmarks).

Many ``DiscoveryCore`` instances run on one simulated clock over a simulated network: messages
are encoded with the real codec, delayed, lost with a given probability and kept in order per
connection (as on a QUIC stream); dials take a round trip and fail across a partition or to a
dead node; a broken connection is noticed after an idle timeout, as QUIC would. Everything
random comes from one seed, so a run is reproduced exactly from its seed.

This is a simulation, not the runtime: it exists to check the protocol's convergence and
robustness at sizes and fault rates the real transport cannot reach in a test.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from node.discovery.config import DiscoveryConfig
from node.discovery.core import DiscoveryCore
from node.discovery.events import CatalogEvent
from node.discovery.local import LocalChange
from node.discovery.outputs import (
    Dial,
    Disconnect,
    EmitEvent,
    Output,
    ScheduleTimer,
    SendMessage,
    SyncCompleted,
    SyncFailed,
)
from node.primitives import Digest, PeerId, SecretKey, encode

EPOCH_MS = 1_750_000_000_000
"""Simulated wall clock at time zero (entries carry wall-clock times)."""


@dataclass(frozen=True, slots=True)
class SimNetworkConfig:
    latency_ms: tuple[int, int] = (5, 60)
    """One-way delay of a message, uniform in this range."""
    loss: float = 0.0
    """Probability that a message is lost."""
    dial_failure_ms: int = 2_000
    """Time for a dial to an unreachable peer to fail."""
    idle_timeout_ms: int = 3_000
    """Time for a silently broken connection (crash, partition) to be noticed."""


@dataclass(slots=True)
class SimNode:
    index: int
    key: SecretKey
    core: DiscoveryCore
    clock_offset_ms: int
    alive: bool = True
    timer_at: int | None = None
    events: list[CatalogEvent] = field(default_factory=list)
    syncs: list[SyncCompleted | SyncFailed] = field(default_factory=list)

    @property
    def peer_id(self) -> PeerId:
        return self.key.peer_id


class Simulation:
    """N discovery cores, one seed. Time is in ms since the simulation's start."""

    def __init__(
        self,
        seed: int,
        *,
        config: DiscoveryConfig | None = None,
        network: SimNetworkConfig | None = None,
        network_name: str = "simulated-network",
    ) -> None:
        self.seed = seed
        self.config = config or DiscoveryConfig()
        self.network = network or SimNetworkConfig()
        self.network_id = Digest.from_name(network_name)
        self.rng = random.Random(seed)
        self.now = 0
        self.nodes: list[SimNode] = []
        self.messages_sent = 0
        self.messages_lost = 0
        self._by_peer: dict[PeerId, int] = {}
        self._links: set[tuple[int, int]] = set()
        self._last_delivery: dict[tuple[int, int], int] = {}
        self._side: dict[int, int] = {}
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0

    # ------------------------------------------------------------------ topology

    def add_node(
        self,
        *,
        bootstrap: Iterable[int] = (),
        clock_offset_ms: int = 0,
        network_id: Digest | None = None,
    ) -> int:
        index = len(self.nodes)
        key = SecretKey.from_seed(self.rng.randbytes(32))
        core = DiscoveryCore(
            key,
            network_id or self.network_id,
            now_ms=EPOCH_MS + self.now + clock_offset_ms,
            rng=random.Random(self.rng.getrandbits(64)),
            config=self.config,
            addrs=(f"10.{index // 65536}.{index // 256 % 256}.{index % 256}:7400",),
        )
        node = SimNode(index, key, core, clock_offset_ms)
        self.nodes.append(node)
        self._by_peer[key.peer_id] = index
        for other in bootstrap:
            peer = self.nodes[other]
            self._apply(
                node,
                core.add_bootstrap(
                    peer.peer_id, peer.core.local_entry.entry.addrs, self._clock(node)
                ),
            )
        self._apply(node, core.tick(self._clock(node)))
        return index

    def crash(self, index: int) -> None:
        """Stop a node without a word: its neighbours notice after the idle timeout."""
        node = self.nodes[index]
        node.alive = False
        for link in [link for link in self._links if index in link]:
            self._break(link, notify_after=self.network.idle_timeout_ms)

    def leave(self, index: int) -> None:
        """Graceful shutdown: the node sends its departure, then stops."""
        node = self.nodes[index]
        self._apply(node, node.core.shutdown(self._clock(node)))
        node.alive = False

    def partition(self, *sides: Iterable[int]) -> None:
        """Cut the network into ``sides`` (nodes not named form one more side)."""
        self._side = {index: n for n, side in enumerate(sides, start=1) for index in side}
        for link in [link for link in self._links if not self._reachable(*link)]:
            self._break(link, notify_after=self.network.idle_timeout_ms)

    def heal(self) -> None:
        self._side = {}

    def change(self, index: int, change: LocalChange) -> None:
        node = self.nodes[index]
        self._apply(node, node.core.update_local(change, self._clock(node)))

    def sync_with(self, index: int, other: int) -> None:
        node = self.nodes[index]
        peer = self.nodes[other].peer_id
        self._apply(node, node.core.sync_with(peer, self._clock(node)))

    def deliver_raw(self, src: int, dst: int, body: bytes) -> None:
        """Hand ``dst`` arbitrary bytes as if ``src`` had sent them (fault injection)."""
        node = self.nodes[dst]
        self._apply(node, node.core.receive(self.nodes[src].peer_id, body, self._clock(node)))

    # ------------------------------------------------------------------ running

    def run_until(self, time_ms: int) -> None:
        while self._queue and self._queue[0][0] <= time_ms:
            at, _, action = heapq.heappop(self._queue)
            self.now = at
            action()
        self.now = max(self.now, time_ms)

    def run_until_true(
        self, condition: Callable[[], bool], *, limit_ms: int, step_ms: int | None = None
    ) -> int | None:
        """Run until ``condition`` holds (checked every ``step_ms``); the time, or None."""
        step = step_ms or self.config.gossip_interval_ms
        end = self.now + limit_ms
        while True:
            if condition():
                return self.now
            if self.now >= end:
                return None
            self.run_until(min(self.now + step, end))

    # ------------------------------------------------------------------ checks

    def alive(self) -> list[SimNode]:
        return [node for node in self.nodes if node.alive]

    def converged(self) -> bool:
        """Every live node's catalog holds exactly the other live nodes (same network)."""
        live = {node.peer_id for node in self.alive()}
        expected = len(live) - 1
        for node in self.alive():
            catalog = node.core.catalog
            if len(catalog) != expected:
                return False
        return all(set(node.core.catalog.peer_ids()) <= live for node in self.alive())

    def missing(self) -> dict[int, int]:
        """For each live node that has not converged: how many live peers it lacks."""
        live = {node.peer_id for node in self.alive()}
        report = {}
        for node in self.alive():
            known = set(node.core.catalog.peer_ids())
            lacking = len(live - known - {node.peer_id}) + len(known - live)
            if lacking:
                report[node.index] = lacking
        return report

    def everyone_holds(self, index: int, version: tuple[int, int]) -> bool:
        peer = self.nodes[index].peer_id
        for node in self.alive():
            if node.index == index:
                continue
            signed = node.core.catalog.signed(peer)
            if signed is None or signed.version < version:
                return False
        return True

    def index_of(self, peer: PeerId) -> int:
        return self._by_peer[peer]

    def degrees(self) -> list[int]:
        return [len(node.core.neighbours) for node in self.alive()]

    # ------------------------------------------------------------------ plumbing

    def _clock(self, node: SimNode) -> int:
        return EPOCH_MS + self.now + node.clock_offset_ms

    def _at(self, time_ms: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time_ms, self._seq, action))

    def _latency(self) -> int:
        low, high = self.network.latency_ms
        return self.rng.randint(low, high)

    def _reachable(self, a: int, b: int) -> bool:
        return self._side.get(a, 0) == self._side.get(b, 0)

    def _link(self, a: int, b: int) -> tuple[int, int]:
        return (a, b) if a < b else (b, a)

    def _in_order(self, src: int, dst: int, at: int) -> int:
        at = max(at, self._last_delivery.get((src, dst), 0))
        self._last_delivery[(src, dst)] = at
        return at

    def _break(self, link: tuple[int, int], *, notify_after: int) -> None:
        self._links.discard(link)
        for me, other in (link, link[::-1]):
            self._notify_disconnected(me, other, self.now + notify_after)

    def _notify_disconnected(self, me: int, other: int, at: int) -> None:
        def run() -> None:
            node = self.nodes[me]
            if node.alive and self._link(me, other) not in self._links:
                peer = self.nodes[other].peer_id
                self._apply(node, node.core.peer_disconnected(peer, self._clock(node)))

        self._at(at, run)

    def _apply(self, node: SimNode, outputs: list[Output]) -> None:
        for output in outputs:
            match output:
                case SendMessage(peer, message):
                    self._send(node.index, self._by_peer[peer], encode(message))
                case ScheduleTimer(at_ms):
                    self._schedule_tick(node, at_ms - EPOCH_MS - node.clock_offset_ms)
                case Dial(peer):
                    self._dial(node.index, self._by_peer[peer])
                case Disconnect(peer):
                    other = self._by_peer[peer]
                    link = self._link(node.index, other)
                    if link in self._links:
                        self._links.discard(link)
                        # Graceful close: the peer sees it after what was already sent.
                        at = self._in_order(node.index, other, self.now + self._latency())
                        self._notify_disconnected(other, node.index, at)
                case EmitEvent(event):
                    node.events.append(event)
                case SyncCompleted() | SyncFailed():
                    node.syncs.append(output)

    def _schedule_tick(self, node: SimNode, at: int) -> None:
        at = max(at, self.now)
        node.timer_at = at

        def run() -> None:
            if node.alive and node.timer_at == at:
                node.timer_at = None
                clock = self._clock(node)
                self._apply(node, node.core.tick(clock))
                deadline = node.core.next_deadline()
                # A core that wants to be ticked again at once would spin its shell.
                if deadline is not None and deadline <= clock:
                    raise AssertionError(f"node {node.index} asks to be ticked again at once")

        self._at(at, run)

    def _send(self, src: int, dst: int, body: bytes) -> None:
        if self._link(src, dst) not in self._links:
            return  # the shell drops messages for peers it is not connected to
        self.messages_sent += 1
        if self.rng.random() < self.network.loss:
            self.messages_lost += 1
            return
        at = self._in_order(src, dst, self.now + self._latency())

        def run() -> None:
            node = self.nodes[dst]
            if node.alive and self._reachable(src, dst):
                peer = self.nodes[src].peer_id
                self._apply(node, node.core.receive(peer, body, self._clock(node)))

        self._at(at, run)

    def _dial(self, src: int, dst: int) -> None:
        handshake = 2 * self._latency()

        def run() -> None:
            node, other = self.nodes[src], self.nodes[dst]
            if not node.alive:
                return
            if not (other.alive and self._reachable(src, dst)):
                self._at(
                    self.now + max(0, self.network.dial_failure_ms - handshake),
                    lambda: self._dial_failed(src, dst),
                )
                return
            link = self._link(src, dst)
            if link not in self._links:
                self._links.add(link)
                self._apply(
                    other,
                    other.core.peer_connected(node.peer_id, self._clock(other), outbound=False),
                )
            self._apply(
                node, node.core.peer_connected(other.peer_id, self._clock(node), outbound=True)
            )

        self._at(self.now + handshake, run)

    def _dial_failed(self, src: int, dst: int) -> None:
        node = self.nodes[src]
        if node.alive:
            self._apply(node, node.core.dial_failed(self.nodes[dst].peer_id, self._clock(node)))
