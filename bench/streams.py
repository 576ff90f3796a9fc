"""Streams throughput and latency on loopback, beside the transport and pyzmq, in one run.

For 100-byte and 1 KiB datums, one producer to one and to four consumers (every node in this
process, so producer and consumers share one core):
- mosaik streams: ``producer.send`` of a msgspec Struct, consumers iterate; end to end;
- raw framed transport: the same encoded bytes written with ``FramedStream.send_bodies`` in
  batches of 64 over the same authenticated QUIC endpoints (what streams add costs on top);
- raw aioquic: aioquic's own client writing length-prefixed frames (bench/transport.py's
  baseline, one consumer only);
- pyzmq PUB/SUB over TCP loopback (what a Python user would pick instead), if installed.
Latency is one datum at a time (send, wait for its arrival): p50/p99 over ``--pings`` datums.

    .venv/bin/python bench/streams.py [--datums N] [--pings N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.network import Network
from node.primitives import Digest, SecretKey, encode
from node.streams import Streams
from node.transport import Connection, Endpoint, FramedStream

BATCH = 64
Result = tuple[float, float, float]
"""datums/s, p50 and p99 latency in microseconds."""


class Datum(msgspec.Struct, array_like=True):
    sent_ns: int
    payload: bytes


def datum_of_size(size: int) -> Datum:
    """A datum whose encoding is ``size`` bytes."""
    overhead = len(encode(Datum(time.perf_counter_ns(), b"")))
    payload = b"x" * (size - overhead)
    datum = Datum(time.perf_counter_ns(), payload)
    while len(encode(datum)) > size:
        payload = payload[:-1]
        datum = Datum(time.perf_counter_ns(), payload)
    return datum


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


# -- mosaik streams -----------------------------------------------------------------------


async def _streams_nodes(consumers: int) -> tuple[list[Network], Streams, list[Streams]]:
    nets = [await Network.create("bench-streams")]
    for _ in range(consumers):
        nets.append(await Network.create("bench-streams", bootstrap=[nets[0].address]))
    handles = []
    for net in nets:
        streams = getattr(net, "streams", None)
        if streams is None:
            streams = Streams(net)
            await streams.start()
        handles.append(streams)
    return nets, handles[0], handles[1:]


async def _close(nets: list[Network], handles: list[Streams]) -> None:
    for net, streams in zip(nets, handles, strict=True):
        if getattr(net, "streams", None) is not streams:
            await streams.close()
        await net.close()


async def bench_streams(consumers: int, datums: int, size: int, pings: int) -> Result:
    nets, source, sinks = await _streams_nodes(consumers)
    producer = source.produce(Datum)
    subscribers = [sink.consume(Datum) for sink in sinks]
    await producer.when.subscribed(minimum_of=consumers)
    datum = datum_of_size(size)

    async def drain(consumer: object) -> None:
        count = 0
        async for _ in consumer:  # type: ignore[attr-defined]
            count += 1
            if count == datums:
                return

    readers = [asyncio.ensure_future(drain(c)) for c in subscribers]
    start = time.perf_counter()
    for _ in range(datums):
        await producer.send(datum)
    await asyncio.gather(*readers)
    elapsed = time.perf_counter() - start
    latencies = []
    for _ in range(pings):
        sent = time.perf_counter_ns()
        await producer.send(Datum(sent, datum.payload))
        for consumer in subscribers:
            received = await consumer.recv()
        latencies.append((time.perf_counter_ns() - received.sent_ns) / 1e3)
    await _close(nets, [source, *sinks])
    p50, p99 = _percentiles(latencies)
    return datums / elapsed, p50, p99


# -- raw framed transport -----------------------------------------------------------------


async def bench_framed(consumers: int, datums: int, size: int, pings: int) -> Result:
    network = Digest.from_name("bench-framed")
    sender = Endpoint(SecretKey.generate(), network)
    await sender.start()
    receivers = [Endpoint(SecretKey.generate(), network) for _ in range(consumers)]
    inbound: asyncio.Queue[FramedStream] = asyncio.Queue()

    async def accept(conn: Connection) -> None:
        stream = await conn.accept_stream()
        await inbound.put(stream)
        await conn.wait_closed()

    for receiver in receivers:
        receiver.register("/bench/1", accept)
        await receiver.start()
    outbound = []
    for receiver in receivers:
        conn = await sender.connect(receiver.local_addr, "/bench/1")
        stream = await conn.open_stream()
        await stream.send_body(b"hello")
        outbound.append(stream)
    sinks = [await inbound.get() for _ in receivers]
    for sink in sinks:
        await sink.recv()
    body = encode(datum_of_size(size))
    batch = [body] * BATCH
    rounds = datums // BATCH

    async def drain(stream: FramedStream) -> None:
        count = 0
        while count < rounds * BATCH:
            await stream.recv()
            count += 1

    readers = [asyncio.ensure_future(drain(s)) for s in sinks]
    start = time.perf_counter()
    for _ in range(rounds):
        for stream in outbound:
            await stream.send_bodies(batch)
    await asyncio.gather(*readers)
    elapsed = time.perf_counter() - start
    latencies = []
    decoder = msgspec.msgpack.Decoder(Datum)
    for _ in range(pings):
        ping = encode(Datum(time.perf_counter_ns(), b"x" * (size - 16)))
        for stream in outbound:
            await stream.send_body(ping)
        for sink in sinks:
            received = decoder.decode(await sink.recv() or b"")
        latencies.append((time.perf_counter_ns() - received.sent_ns) / 1e3)
    for endpoint in [sender, *receivers]:
        await endpoint.close()
    p50, p99 = _percentiles(latencies)
    return rounds * BATCH / elapsed, p50, p99


# -- raw aioquic (bench/transport.py) -------------------------------------------------------


def _transport_bench() -> object:
    spec = importlib.util.spec_from_file_location(
        "bench_transport", Path(__file__).resolve().parent / "transport.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def bench_aioquic(datums: int, size: int) -> float:
    module = _transport_bench()
    module.FRAME = size  # type: ignore[attr-defined]
    module.BODY = b"x" * size  # type: ignore[attr-defined]
    elapsed = await module.bench_raw(datums)  # type: ignore[attr-defined]
    return datums / elapsed


# -- pyzmq ----------------------------------------------------------------------------------


async def bench_zmq(consumers: int, datums: int, size: int, pings: int) -> Result | None:
    try:
        import zmq
        import zmq.asyncio
    except ImportError:
        return None
    context = zmq.asyncio.Context()
    publisher = context.socket(zmq.PUB)
    publisher.setsockopt(zmq.SNDHWM, 0)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    subscribers = []
    for _ in range(consumers):
        subscriber = context.socket(zmq.SUB)
        subscriber.setsockopt(zmq.RCVHWM, 0)
        subscriber.connect(f"tcp://127.0.0.1:{port}")
        subscriber.setsockopt(zmq.SUBSCRIBE, b"")
        subscribers.append(subscriber)
    # PUB/SUB drops what is sent before a subscription lands: probe until all receive.
    ready = [False] * consumers
    while not all(ready):
        await publisher.send(b"probe")
        await asyncio.sleep(0.01)
        for index, subscriber in enumerate(subscribers):
            while await subscriber.poll(0):
                await subscriber.recv()
                ready[index] = True
    datum = datum_of_size(size)

    async def drain(subscriber: zmq.asyncio.Socket) -> None:
        count = 0
        while count < datums:
            message = await subscriber.recv()
            if message != b"probe":
                count += 1

    readers = [asyncio.ensure_future(drain(s)) for s in subscribers]
    start = time.perf_counter()
    for index in range(datums):
        await publisher.send(encode(datum))
        if index % 256 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*readers)
    elapsed = time.perf_counter() - start
    decoder = msgspec.msgpack.Decoder(Datum)
    latencies = []
    for _ in range(pings):
        await publisher.send(encode(Datum(time.perf_counter_ns(), datum.payload)))
        for subscriber in subscribers:
            received = decoder.decode(await subscriber.recv())
        latencies.append((time.perf_counter_ns() - received.sent_ns) / 1e3)
    for socket in [publisher, *subscribers]:
        socket.close(linger=0)
    context.term()
    p50, p99 = _percentiles(latencies)
    return datums / elapsed, p50, p99


# -- report ---------------------------------------------------------------------------------


def row(name: str, result: Result, baseline: float | None) -> None:
    rate, p50, p99 = result
    ratio = f"{rate / baseline:5.2f}x framed" if baseline else "   baseline  "
    print(f"  {name:<34} {rate:>10,.0f} datums/s  {ratio}  p50 {p50:7.0f} us  p99 {p99:7.0f} us")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datums", type=int, default=100_000)
    parser.add_argument("--pings", type=int, default=1000)
    args = parser.parse_args()
    print(f"loopback, one process; {args.datums} datums per run, latency over {args.pings}")
    for size in (100, 1024):
        datums = args.datums if size == 100 else args.datums // 4
        aioquic = await bench_aioquic(datums, size)
        print(f"{size}-byte datums; raw aioquic (no auth, no framing): {aioquic:,.0f} frames/s")
        for consumers in (1, 4):
            print(f" one producer -> {consumers} consumer{'s' if consumers > 1 else ''}")
            framed = await bench_framed(consumers, datums, size, args.pings)
            row("raw framed transport (batches of 64)", framed, None)
            ours = await bench_streams(consumers, datums, size, args.pings)
            row("mosaik streams", ours, framed[0])
            if consumers == 1:
                print(f"  {'':<34} {'':>10}           {ours[0] / aioquic:5.2f}x raw aioquic")
            zmq_result = await bench_zmq(consumers, datums, size, args.pings)
            if zmq_result is None:
                print("  pyzmq PUB/SUB: not installed (pip install pyzmq)")
            else:
                row("pyzmq PUB/SUB (tcp)", zmq_result, framed[0])


if __name__ == "__main__":
    asyncio.run(main())
