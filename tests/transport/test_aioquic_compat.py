"""Pins the aioquic internals node/transport/_aioquic.py relies on: fails loudly if they move."""

from __future__ import annotations

import inspect

from aioquic import tls
from aioquic.quic.connection import QuicConnection
from aioquic.quic.stream import QuicStreamSender

from node.transport import _aioquic


def test_private_attributes_still_exist() -> None:
    assert "_peer_certificate" in inspect.getsource(tls.Context.__init__)
    sender = QuicStreamSender(stream_id=0, writable=True)
    assert hasattr(sender, "_buffer_start") and hasattr(sender, "_buffer_stop")
    assert hasattr(QuicConnection, "_write_stream_limits")
    assert hasattr(QuicConnection, "_on_max_stream_data_delivery")
    assert "_close_event" in inspect.getsource(QuicConnection.__init__)


def test_overridden_method_keeps_its_signature() -> None:
    ours = inspect.signature(_aioquic.CreditedQuicConnection._write_stream_limits)
    theirs = inspect.signature(QuicConnection._write_stream_limits)
    assert list(ours.parameters) == list(theirs.parameters)
