"""A node in its own process for the restart tests: ``python -m tests.discovery._lone_node
<key file> <bind> <bootstrap peer> <network>``.

It keeps to its bootstrap peer (one neighbour wanted, no shuffle), so a peer it does not dial
learns of its restarts only through the catalog. It produces the ``incarnations`` stream: every
50 ms a datum carrying its process's start time, which tells its incarnations apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys

import msgspec

from node import Network, SecretKey
from node.discovery.service import config_with_ttl

STREAM = "incarnations"
_SEND_INTERVAL_S = 0.05


class Incarnation(msgspec.Struct, frozen=True):
    start_ms: int
    seq: int


async def _run(key_file: str, bind: str, bootstrap: str, network: str) -> None:
    discovery = dataclasses.replace(
        config_with_ttl(300.0),
        target_neighbours=1,
        max_neighbours=4,
        shuffle_interval_ms=3_600_000,
    )
    async with Network.create(
        network,
        secret_key=SecretKey.from_file(key_file),
        bind=bind,
        bootstrap=[bootstrap],
        discovery=discovery,
    ) as net:
        producer = net.streams.produce(Incarnation, stream_id=STREAM)
        print(f"node ready: address={net.local_addr}", flush=True)
        start_ms = net.discovery.local_entry.entry.start_ms
        seq = 0
        while True:
            await producer.send(Incarnation(start_ms, seq))
            seq += 1
            await asyncio.sleep(_SEND_INTERVAL_S)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(f"usage: {sys.argv[0]} <key file> <bind> <bootstrap peer> <network>")
    asyncio.run(_run(*sys.argv[1:]))
