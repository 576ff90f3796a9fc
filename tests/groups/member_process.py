"""A group member in its own process, for crash tests: ``python -m tests.groups.member_process``.

``run`` joins the counter group with SQLite in ``--data-dir`` and increments it in a loop,
printing ``ack <value>`` after each increment is applied (acknowledged). ``check`` joins,
waits for a leader, and prints ``value <v>`` from a strong query. Both print ``ready``
first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from node.demo.counter import Counter, Increment, Value
from node.network import Network
from node.primitives import SecretKey
from tests.groups.live import FAST


async def main(args: argparse.Namespace) -> None:
    key = SecretKey.from_seed(args.key_seed.to_bytes(32, "big"))
    async with Network.create(
        "groups-process-tests",
        secret_key=key,
        bind=args.bind,
        bootstrap=args.bootstrap,
        data_dir=args.data_dir,
    ) as net:
        group = await net.groups.join(
            "counter", state_machine=Counter(), bootstrap_expect=args.expect, consensus=FAST
        )
        print("ready", flush=True)
        await group.when.online()
        if args.mode == "check":
            value = await group.query(Value(), consistency="strong")
            print(f"value {value}", flush=True)
            await asyncio.Event().wait()
        while True:
            done = await group.execute(Increment())
            print(f"ack {done.result}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "check"])
    parser.add_argument("--key-seed", type=int, required=True)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--bootstrap", action="append", default=[])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--expect", type=int, default=3)
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
