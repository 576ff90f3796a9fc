"""The subscription handshake on ALPN ``/mosaik/streams/1``.

The consumer dials the producer's node on a connection of its own (one per subscription, so
a close code speaks for exactly one channel), opens one bidirectional stream and sends
``Subscribe``. The producer checks, in order: network, that it knows the consumer (else
UnknownPeer: the consumer syncs its catalog with the producer and retries), that it produces
the stream, capacity, ``require`` predicates and tickets; it refuses by closing the connection
with the matching code, or answers ``StartStream``. Every later frame from the producer is one
datum: the msgpack body of the datum itself, encoded once for all subscribers. The consumer
never sends again; closing the connection ends the subscription.
"""

from __future__ import annotations

import msgspec

from node.primitives.codec import Decoder
from node.primitives.digest import NetworkId, StreamId

ALPN = "/mosaik/streams/1"


class Criteria(msgspec.Struct, frozen=True):
    """What the consumer asks of the stream. Empty today: every datum sent after the
    subscription starts. Unknown fields are ignored, so later versions can add filters."""


class Subscribe(msgspec.Struct, frozen=True, tag="subscribe"):
    network_id: NetworkId
    stream_id: StreamId
    criteria: Criteria = Criteria()


class StartStream(msgspec.Struct, frozen=True, tag="start"):
    stream_id: StreamId


subscribe_decoder: Decoder[Subscribe] = Decoder(Subscribe)
start_decoder: Decoder[StartStream] = Decoder(StartStream)
