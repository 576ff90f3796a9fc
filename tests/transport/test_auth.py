"""A peer that cannot prove its node key never reaches a protocol handler."""

from __future__ import annotations

import asyncio
import ssl

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent

from node.primitives import SecretKey, encode_frame
from node.transport import Connection, auth, codes
from tests.conftest import deadline
from tests.transport.conftest import NETWORK


class Rogue(QuicConnectionProtocol):
    """A raw aioquic client (its own socket) that says whatever the test wants."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.terminated: asyncio.Future[ConnectionTerminated] = (
            asyncio.get_running_loop().create_future()
        )

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated) and not self.terminated.done():
            self.terminated.set_result(event)


async def rogue_session(endpoint, first_bytes: bytes | None) -> ConnectionTerminated:
    config = QuicConfiguration(
        is_client=True, alpn_protocols=["/test/1"], verify_mode=ssl.CERT_NONE
    )
    host, port = endpoint.local_addr
    async with connect(host, port, configuration=config, create_protocol=Rogue) as client:
        assert isinstance(client, Rogue)
        if first_bytes is not None:
            client._quic.send_stream_data(auth.AUTH_STREAM_ID, first_bytes)
            client.transmit()
        return await asyncio.wait_for(client.terminated, deadline(10))


async def handler_never_called(conn: Connection) -> None:
    raise AssertionError("an unauthenticated peer reached the handler")


async def test_invalid_signature_is_closed(make_endpoint) -> None:
    server = await make_endpoint()
    server.register("/test/1", handler_never_called)
    liar = SecretKey.generate()
    hello = auth.make_hello(liar, NETWORK, "/test/1", server.peer_id)
    forged = auth.AuthHello(hello.version, NETWORK, SecretKey.generate().peer_id, hello.signature)
    event = await rogue_session(server, encode_frame(forged))
    assert event.error_code == codes.AUTHENTICATION_FAILED
    assert "invalid key proof" in event.reason_phrase


async def test_proof_for_another_server_is_closed(make_endpoint) -> None:
    server = await make_endpoint()
    server.register("/test/1", handler_never_called)
    key = SecretKey.generate()
    relayed = auth.make_hello(key, NETWORK, "/test/1", SecretKey.generate().peer_id)
    event = await rogue_session(server, encode_frame(relayed))
    assert event.error_code == codes.AUTHENTICATION_FAILED


async def test_garbage_proof_is_closed(make_endpoint) -> None:
    server = await make_endpoint()
    server.register("/test/1", handler_never_called)
    event = await rogue_session(server, b"\x00\x00\x00\x03abc")
    assert event.error_code == codes.AUTHENTICATION_FAILED
    assert "malformed" in event.reason_phrase


async def test_no_proof_is_closed_after_the_auth_timeout(make_endpoint) -> None:
    from node.transport import TransportConfig

    server = await make_endpoint(config=TransportConfig(auth_timeout=0.3))
    server.register("/test/1", handler_never_called)
    event = await rogue_session(server, None)
    assert event.error_code == codes.AUTHENTICATION_FAILED
    assert "no key proof" in event.reason_phrase
    assert server.stats["connections_accepted"] == 0
