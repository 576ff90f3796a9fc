"""Streams: typed pub/sub between nodes, found through discovery.

    producer = net.streams.produce(SensorReading)
    await producer.send(SensorReading(temp=21.5))

    consumer = net.streams.consume(SensorReading, require=lambda peer: tag in peer.tags)
    async for reading in consumer: ...

The default stream id of a type is ``Digest.from_name(f"{T.__module__}.{T.__qualname__}")``.

The sans-I/O parts load eagerly; the asyncio shell (``Streams``, producers, consumers, their
builders and ``When``) resolves on first use, so importing a core does not start asyncio.
"""

import typing

from node._lazy import lazy as _lazy
from node.streams.channels import ChannelInfo, ChannelState
from node.streams.conditions import Condition, minimum_of, with_predicate, with_tags
from node.streams.config import (
    DEFAULT_BUFFER_SIZE,
    Backoff,
    ConsumerConfig,
    Lagging,
    ProducerConfig,
    default_stream_id,
)
from node.streams.errors import (
    AlreadyExists,
    Closed,
    ConsumerClosed,
    Full,
    InvalidDatum,
    Offline,
    SendError,
    StreamsError,
)
from node.streams.messages import ALPN, Criteria, StartStream, Subscribe

if typing.TYPE_CHECKING:
    from node.streams.builders import ConsumerBuilder, ProducerBuilder
    from node.streams.consumer import Consumer
    from node.streams.producer import Producer
    from node.streams.streams import Streams
    from node.streams.when import ChannelCondition, When
else:
    __getattr__, __dir__ = _lazy(
        __name__,
        {
            "node.streams.builders": ("ConsumerBuilder", "ProducerBuilder"),
            "node.streams.consumer": ("Consumer",),
            "node.streams.producer": ("Producer",),
            "node.streams.streams": ("Streams",),
            "node.streams.when": ("ChannelCondition", "When"),
        },
    )

__all__ = [
    "ALPN",
    "DEFAULT_BUFFER_SIZE",
    "AlreadyExists",
    "Backoff",
    "ChannelCondition",
    "ChannelInfo",
    "ChannelState",
    "Closed",
    "Condition",
    "Consumer",
    "ConsumerBuilder",
    "ConsumerClosed",
    "ConsumerConfig",
    "Criteria",
    "Full",
    "InvalidDatum",
    "Lagging",
    "Offline",
    "Producer",
    "ProducerBuilder",
    "ProducerConfig",
    "SendError",
    "StartStream",
    "Streams",
    "StreamsError",
    "Subscribe",
    "When",
    "default_stream_id",
    "minimum_of",
    "with_predicate",
    "with_tags",
]
