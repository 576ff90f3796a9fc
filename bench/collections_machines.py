"""Collection state machines alone (no network): apply throughput and 100k-item snapshots.

For each collection kind:
- apply ops/s of single-item writes, raw (``machine.apply`` of a decoded command) and on the
  replica path (``check`` at the writer, encode, decode at the member, apply);
- ``snapshot()`` and ``restore()`` times and the snapshot size for ``--items`` entries.

    .venv/bin/python bench/collections_machines.py [--items 100000] [--ops 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.collections import (
    CellMachine,
    CollectionMachine,
    MapMachine,
    PriorityQueueMachine,
    SetMachine,
    VecMachine,
)
from node.collections.cell import CellWrite
from node.collections.map import MapExtend, MapInsert
from node.collections.pqueue import PqExtend, PqInsert
from node.collections.set import SetExtend, SetInsert
from node.collections.vec import VecExtend, VecPushBack
from node.groups.state_machine import ApplyContext
from node.primitives import Decoder, Digest, encode

STORE = Digest.from_name("bench")

Kind = tuple[
    str,
    Callable[[], CollectionMachine[Any]],
    Callable[[int], Any],  # one write
    Callable[[int], Any] | None,  # a bulk load of n items
]

KINDS: list[Kind] = [
    (
        "map",
        lambda: MapMachine(STORE, str, int),
        lambda i: MapInsert(f"key-{i}", i),
        lambda n: MapExtend([(f"key-{i}", i) for i in range(n)]),
    ),
    (
        "vec",
        lambda: VecMachine(STORE, str),
        lambda i: VecPushBack(f"item-{i}"),
        lambda n: VecExtend([f"item-{i}" for i in range(n)]),
    ),
    (
        "set",
        lambda: SetMachine(STORE, str),
        lambda i: SetInsert(f"item-{i}"),
        lambda n: SetExtend([f"item-{i}" for i in range(n)]),
    ),
    ("cell", lambda: CellMachine(STORE, str), lambda i: CellWrite(f"value-{i}"), None),
    (
        "depq",
        lambda: PriorityQueueMachine(STORE, int, str, int),
        lambda i: PqInsert((i * 7919) % 10007, f"key-{i}", i),
        lambda n: PqExtend([((i * 7919) % 10007, f"key-{i}", i) for i in range(n)]),
    ),
]


def rate(ops: int, seconds: float) -> str:
    return f"{ops / seconds:>10,.0f}/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=100_000)
    args = parser.parse_args()
    print(f"{'kind':6} {'apply raw':>12} {'replica path':>12}   snapshot of {args.items:,} items")
    for name, make, write, load in KINDS:
        commands = [write(i) for i in range(args.ops)]
        machine = make()
        started = time.perf_counter()
        for i, command in enumerate(commands, 1):
            machine.apply(command, ApplyContext(i, 1))
        raw = time.perf_counter() - started

        machine = make()
        decoder: Decoder[Any] = Decoder(machine.command_type)
        started = time.perf_counter()
        for i, command in enumerate(commands, 1):
            body = encode(machine.check(command))
            machine.apply(decoder.decode(body), ApplyContext(i, 1))
        path = time.perf_counter() - started

        line = f"{name:6} {rate(args.ops, raw)} {rate(args.ops, path)}"
        if load is not None:
            machine = make()
            machine.apply(load(args.items), ApplyContext(1, 1))
            started = time.perf_counter()
            data = machine.snapshot()
            taken = time.perf_counter() - started
            fresh = make()
            started = time.perf_counter()
            fresh.restore(data)
            restored = time.perf_counter() - started
            assert fresh.snapshot() == data
            line += (
                f"   snapshot {taken * 1e3:6.1f} ms  restore {restored * 1e3:6.1f} ms"
                f"  {len(data) / 2**20:5.2f} MiB"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
