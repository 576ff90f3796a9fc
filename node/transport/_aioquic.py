"""Every use of aioquic internals lives here, pinned by tests/transport/test_aioquic_compat.py.

aioquic offers no public way to (1) read the peer's certificate, (2) see how many bytes of a
stream are still unacknowledged, or (3) grant receive credit by what the application consumed
rather than by what arrived (it doubles windows on arrival, so a slow reader's memory grows
without bound). If aioquic changes these internals, the compat tests fail loudly.
"""

from __future__ import annotations

import datetime
from typing import Any

from aioquic.quic.connection import (
    MAX_STREAM_DATA_FRAME_CAPACITY,
    QuicConnection,
)
from aioquic.quic.packet import QuicFrameType
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from node.primitives.keys import PeerId, SecretKey


def self_signed_certificate(key: SecretKey) -> x509.Certificate:
    """An ed25519 certificate over the node key; peers read the key, never the chain."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, key.peer_id.hex())])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key.private_key, None)
    )


def peer_certificate_id(quic: QuicConnection) -> PeerId | None:
    """The ed25519 key of the certificate the peer proved in the TLS handshake, if any."""
    cert = getattr(quic.tls, "_peer_certificate", None)
    if cert is None:
        return None
    public = cert.public_key()
    if not isinstance(public, Ed25519PublicKey):
        return None
    return PeerId(public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def unacked_bytes(quic: QuicConnection, stream_id: int) -> int:
    """Bytes written to a stream that the peer has not acknowledged yet."""
    stream = quic._streams.get(stream_id)
    if stream is None:
        return 0
    sender = stream.sender
    return int(sender._buffer_stop - sender._buffer_start)


class CreditedQuicConnection(QuicConnection):
    """A QuicConnection whose stream receive windows follow application consumption.

    The window is ``consumed + stream_window``; it is re-advertised once it can grow by half a
    window, so a reader that stops reading stops the writer after one window of data.
    """

    def __init__(self, *, stream_window: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream_window = stream_window
        self.consumed: dict[int, int] = {}

    def credit_due(self, stream_id: int) -> bool:
        stream = self._streams.get(stream_id)
        if stream is None or not stream.max_stream_data_local:
            return False
        target = self.consumed.get(stream_id, 0) + self.stream_window
        return target - stream.max_stream_data_local >= self.stream_window // 2

    def _write_stream_limits(self, builder: Any, space: Any, stream: Any) -> None:
        if not stream.max_stream_data_local:
            return
        target = self.consumed.get(stream.stream_id, 0) + self.stream_window
        if target - stream.max_stream_data_local >= self.stream_window // 2:
            stream.max_stream_data_local = target
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            buf = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=MAX_STREAM_DATA_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            buf.push_uint_var(stream.stream_id)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local


def pending_close(quic: QuicConnection) -> Any:
    """The ConnectionTerminated a closing/draining connection will report.

    aioquic only emits it after the 3-PTO draining period; the runtime must react at once.
    """
    return quic._close_event
