"""Sensor readings over mosaik streams: one node produces, two consume and print rates.

The producer advertises the stream in its signed peer entry; consumers that bootstrap from it
find the stream in their catalog and subscribe, with no configuration beyond a seed address.
Each process prints one line per second.

    .venv/bin/python examples/sensors.py demo [--seconds 5] [--rate 2000]
    .venv/bin/python examples/sensors.py produce [--bind 127.0.0.1:7400] [--rate 2000]
    .venv/bin/python examples/sensors.py consume --bootstrap <peer-id>@127.0.0.1:7400 [--name c1]

``demo`` runs the three roles as separate processes on loopback, for ``--seconds`` once both
consumers receive readings, and exits 0 when both did.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node import Digest, Network

NETWORK = "mosaik-sensors-demo"
# Explicit, so the id does not depend on the module name the type is defined in.
STREAM = "examples.sensors.SensorReading"
SENSOR_TAG = Digest.from_name("sensor")
STARTUP_TIMEOUT = 60.0  # seconds for the three processes to start and exchange data


class SensorReading(msgspec.Struct, frozen=True):
    sensor: str
    seq: int
    celsius: float
    taken_ns: int


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def produce(bind: str, rate: int) -> None:
    stop = _stop_event()
    async with Network.create(NETWORK, bind=bind, tags=["sensor"]) as net:
        producer = net.streams.produce(SensorReading, stream_id=STREAM)
        print(f"producer ready: {net.address}", flush=True)
        seq, sent, second = 0, 0, time.monotonic()
        per_tick = max(1, rate // 100)  # paced in ticks of 10 ms
        tick = time.monotonic()
        while not stop.is_set():
            if not producer.is_online:
                print("producer: waiting for a consumer", flush=True)
                await producer.when.online()
                tick = time.monotonic()
            for _ in range(per_tick):
                celsius = 21 + 3 * math.sin(seq / 500)
                await producer.send(SensorReading("boiler", seq, celsius, time.time_ns()))
                seq += 1
                sent += 1
            tick += 0.01
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            if time.monotonic() - second >= 1:
                consumers = len(producer.consumers())
                print(f"producer: {sent} readings/s to {consumers} consumers", flush=True)
                sent, second = 0, time.monotonic()


async def consume(bootstrap: str, name: str) -> None:
    stop = _stop_event()
    async with Network.create(NETWORK, bootstrap=[bootstrap], tags=["display"]) as net:
        consumer = net.streams.consume(
            SensorReading, stream_id=STREAM, require=lambda peer: SENSOR_TAG in peer.tags
        )
        print(f"{name} ready: {net.address}", flush=True)

        async def show() -> None:
            latencies: list[float] = []
            second = time.monotonic()
            async for reading in consumer:
                latencies.append((time.time_ns() - reading.taken_ns) / 1e6)
                if time.monotonic() - second >= 1:
                    print(
                        f"{name}: {len(latencies)} readings/s, latency p50 "
                        f"{statistics.median(latencies):.2f} ms, {reading.sensor} at "
                        f"{reading.celsius:.2f} C (#{reading.seq})",
                        flush=True,
                    )
                    latencies, second = [], time.monotonic()

        showing = asyncio.ensure_future(show())
        await stop.wait()
        showing.cancel()


def demo(seconds: float, rate: int) -> int:
    """Run producer and two consumers as processes; 0 if both consumers got readings."""
    script = [sys.executable, "-u", str(Path(__file__).resolve())]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    producer = subprocess.Popen(
        [*script, "produce", "--bind", "127.0.0.1:0", "--rate", str(rate)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    processes = [producer]
    try:
        assert producer.stdout is not None
        ready = producer.stdout.readline().strip()
        if not ready.startswith("producer ready: "):
            print(f"producer did not start: {ready!r}", file=sys.stderr)
            return 1
        print(ready)
        seed = ready.removeprefix("producer ready: ")
        for name in ("c1", "c2"):
            processes.append(
                subprocess.Popen(
                    [*script, "consume", "--bootstrap", seed, "--name", name],
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        return asyncio.run(_relay(processes, seconds))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


async def _relay(processes: list[subprocess.Popen[str]], seconds: float) -> int:
    """Print the processes' lines until both consumers report readings, then for ``seconds``
    more; stop them and check both consumers got data."""
    loop = asyncio.get_running_loop()
    received = {"c1": 0, "c2": 0}
    both_receiving = asyncio.Event()

    def pump(process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            name, _, rest = line.partition(":")
            if name in received and "readings/s" in rest:
                received[name] += int(rest.split()[0])
                if all(received.values()):
                    loop.call_soon_threadsafe(both_receiving.set)

    pumps = [loop.run_in_executor(None, pump, p) for p in processes]
    # A slow machine may take a while to start three interpreters: wait for data, not a clock.
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            await both_receiving.wait()
    except TimeoutError:
        print(f"the consumers received nothing within {STARTUP_TIMEOUT} s", file=sys.stderr)
    else:
        await asyncio.sleep(seconds)
    for process in processes:
        process.send_signal(signal.SIGTERM)
    codes = [await loop.run_in_executor(None, p.wait) for p in processes]
    await asyncio.gather(*pumps)
    print(f"exit codes {codes}; readings per consumer {received}")
    return 0 if all(c == 0 for c in codes) and all(received.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    roles = parser.add_subparsers(dest="role", required=True)
    run = roles.add_parser("demo", help="producer and two consumers as local processes")
    run.add_argument("--seconds", type=float, default=5.0)
    run.add_argument("--rate", type=int, default=2000, help="readings per second")
    prod = roles.add_parser("produce", help="one node producing sensor readings")
    prod.add_argument("--bind", default="127.0.0.1:0")
    prod.add_argument("--rate", type=int, default=2000, help="readings per second")
    cons = roles.add_parser("consume", help="one node consuming and printing rates")
    cons.add_argument("--bootstrap", required=True, help="<peer-id>@host:port of any node")
    cons.add_argument("--name", default="consumer")
    args = parser.parse_args()
    if args.role == "demo":
        return demo(args.seconds, args.rate)
    if args.role == "produce":
        asyncio.run(produce(args.bind, args.rate))
    else:
        asyncio.run(consume(args.bootstrap, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
