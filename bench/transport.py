"""Transport throughput: 100-byte frames over one stream on loopback, against raw aioquic.

The baseline is aioquic's own asyncio client and server writing the same length-prefixed
frames to one stream (no authentication, no framing layer, no backpressure), measured in the
same run. Printed: frames/s, MB/s, and our ratio to the baseline.

    .venv/bin/python bench/transport.py [--frames N]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import struct
import sys
import tempfile
import time
from pathlib import Path

from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamDataReceived
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.primitives import Digest, SecretKey
from node.transport import Connection, Endpoint
from node.transport._aioquic import self_signed_certificate

FRAME = 100
BODY = b"x" * FRAME


async def bench_ours(frames: int, batch: int) -> float:
    frames -= frames % batch
    network = Digest.from_name("bench")
    sender, receiver = (
        Endpoint(SecretKey.generate(), network),
        Endpoint(SecretKey.generate(), network),
    )
    done = asyncio.get_running_loop().create_future()

    async def sink(conn: Connection) -> None:
        stream = await conn.accept_stream()
        count = 0
        async for _ in stream:
            count += 1
            if count == frames:
                done.set_result(None)

    receiver.register("/bench/1", sink)
    await sender.start()
    await receiver.start()
    conn = await sender.connect(receiver.local_addr, "/bench/1")
    stream = await conn.open_stream()
    start = time.perf_counter()
    if batch == 1:
        for _ in range(frames):
            await stream.send_body(BODY)
    else:
        group = [BODY] * batch
        for _ in range(frames // batch):
            await stream.send_bodies(group)
    await done
    elapsed = time.perf_counter() - start
    await sender.close()
    await receiver.close()
    return elapsed


class _Sink(QuicConnectionProtocol):
    expected = 0
    done: asyncio.Future[None]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.received = 0

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self.received += len(event.data)
            if self.received >= _Sink.expected and not _Sink.done.done():
                _Sink.done.set_result(None)


async def bench_raw(frames: int) -> float:
    key = SecretKey.generate()
    cert = self_signed_certificate(key)
    server_config = QuicConfiguration(is_client=False, alpn_protocols=["/bench/1"])
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server_config.load_cert_chain(cert_file, key_file)
    _Sink.expected = frames * (FRAME + 4)
    _Sink.done = asyncio.get_running_loop().create_future()
    server = await serve("127.0.0.1", 0, configuration=server_config, create_protocol=_Sink)
    port = server._transport.get_extra_info("sockname")[1]
    client_config = QuicConfiguration(
        is_client=True, alpn_protocols=["/bench/1"], verify_mode=ssl.CERT_NONE
    )
    frame = struct.pack(">I", FRAME) + BODY
    async with connect("127.0.0.1", port, configuration=client_config) as client:
        stream_id = client._quic.get_next_available_stream_id()
        start = time.perf_counter()
        for i in range(frames):
            client._quic.send_stream_data(stream_id, frame)
            if i % 64 == 0:
                client.transmit()
                await asyncio.sleep(0)
        client.transmit()
        await _Sink.done
        elapsed = time.perf_counter() - start
    server.close()
    return elapsed


def report(name: str, frames: int, elapsed: float, baseline: float | None) -> None:
    rate = frames / elapsed
    mbps = frames * FRAME / elapsed / 1e6
    ratio = f"{baseline / elapsed:5.2f}x raw aioquic" if baseline else "baseline"
    print(f"{name:<34} {rate:>10,.0f} frames/s {mbps:7.2f} MB/s  {ratio}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100_000)
    frames = parser.parse_args().frames
    print(f"{frames} frames of {FRAME} bytes, one stream, loopback, one process")
    raw = await bench_raw(frames)
    report("raw aioquic (no auth, no framing)", frames, raw, None)
    report("mosaik one frame per send", frames, await bench_ours(frames, 1), raw)
    batched = frames - frames % 64
    report("mosaik batches of 64 frames", batched, await bench_ours(batched, 64), raw)


if __name__ == "__main__":
    asyncio.run(main())
