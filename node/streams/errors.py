"""Errors of the streams subsystem.

    MosaikError
    └── StreamsError            base of every streams error
        ├── AlreadyExists       a producer for this stream id exists on this node (builder form)
        ├── InvalidDatum        a datum that is not of the stream's type, cannot be encoded,
        │                       or encodes above the maximum frame size (our fault)
        ├── SendError           ``try_send`` could not take the datum; ``datum`` is handed back
        │   ├── Offline         the producer's online condition is not met
        │   ├── Full            no room in the producer's buffer right now
        │   └── Closed          the producer is closed (also raised by ``send``)
        └── ConsumerClosed      the consumer is closed and every received datum was read

A producer's refusal of a subscription travels as a connection close code (``codes``); the
consumer records it on the channel (``ChannelInfo.close_code``/``error``) and decides whether
to retry, so it is not an exception of the public API.
"""

from __future__ import annotations

from typing import Any

from node.errors import MosaikError


class StreamsError(MosaikError):
    """Base of every error the streams subsystem raises."""


class AlreadyExists(StreamsError):
    """The builder form found a producer for the same stream id on this node."""


class InvalidDatum(StreamsError):
    """A datum the producer cannot send (wrong type, unencodable, too large)."""


class SendError(StreamsError):
    """``try_send`` did not take the datum; it is returned in ``datum``."""

    def __init__(self, message: str, datum: Any) -> None:
        super().__init__(message)
        self.datum = datum


class Offline(SendError):
    """The producer's online condition (``online_when``) is not met."""


class Full(SendError):
    """The producer's buffer has no room; ``send`` would wait."""


class Closed(SendError):
    """The producer is closed."""


class ConsumerClosed(StreamsError):
    """The consumer is closed and its buffer is drained."""
