"""An in-process fault shim under the datagram layer, for tests.

The kernel here has no netem, so loss, delay and partitions are injected between the QUIC
endpoint and its UDP socket. Randomness comes from a seeded ``random.Random`` so a failing run
can be replayed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from node.transport.addr import SocketAddr

SendTo = Callable[[bytes, tuple[str, int]], None]


def _key(addr: SocketAddr | tuple[str, int]) -> tuple[str, int]:
    return (addr[0], int(addr[1]))


@dataclass
class FaultStats:
    sent: int = 0
    dropped: int = 0
    delayed: int = 0
    partitioned: int = 0


@dataclass
class FaultShim:
    """Applies drop probability, added delay and partitions to outgoing datagrams.

    ``local`` is the address of the endpoint this shim sits under; a partition drops datagrams
    whose source and destination lie on different sides.
    """

    drop: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    seed: int | None = None
    stats: FaultStats = field(default_factory=FaultStats)
    _rng: random.Random = field(init=False)
    _sides: list[frozenset[tuple[str, int]]] = field(default_factory=list, init=False)
    _blocked: set[tuple[tuple[str, int], tuple[str, int]]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop <= 1.0:
            raise ValueError(f"drop probability {self.drop} is not within [0, 1]")
        if self.delay < 0 or self.jitter < 0:
            raise ValueError("delay and jitter must not be negative")
        self._rng = random.Random(self.seed)

    def partition(self, *sides: Iterable[SocketAddr | tuple[str, int]]) -> None:
        """Cut traffic between every pair of sides (addresses on no side are unaffected)."""
        self._sides = [frozenset(_key(a) for a in side) for side in sides]

    def block(self, src: SocketAddr | tuple[str, int], dst: SocketAddr | tuple[str, int]) -> None:
        """Cut one direction only (asymmetric partition)."""
        self._blocked.add((_key(src), _key(dst)))

    def heal(self) -> None:
        self._sides = []
        self._blocked.clear()

    def _cut(self, src: tuple[str, int], dst: tuple[str, int]) -> bool:
        if (src, dst) in self._blocked:
            return True
        src_side = next((i for i, s in enumerate(self._sides) if src in s), None)
        dst_side = next((i for i, s in enumerate(self._sides) if dst in s), None)
        return src_side is not None and dst_side is not None and src_side != dst_side

    def send(self, sendto: SendTo, data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        self.stats.sent += 1
        if self._cut(_key(src), _key(dst)):
            self.stats.partitioned += 1
            return
        if self.drop and self._rng.random() < self.drop:
            self.stats.dropped += 1
            return
        wait = self.delay + (self._rng.uniform(0, self.jitter) if self.jitter else 0.0)
        if wait > 0:
            self.stats.delayed += 1
            asyncio.get_running_loop().call_later(wait, sendto, data, dst)
        else:
            sendto(data, dst)
