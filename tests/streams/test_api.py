"""The public surface: exported names, option validation, and errors that name the problem."""

from __future__ import annotations

import pytest

import node.streams
from node.errors import ConfigError, MosaikError
from node.streams import (
    Backoff,
    Closed,
    Full,
    Lagging,
    Offline,
    SendError,
    StreamsError,
    default_stream_id,
    minimum_of,
)
from node.streams.config import ConsumerConfig, ProducerConfig, resolve_stream_id
from tests.streams.conftest import MakeNode, Reading, streams
from tests.streams.helpers import STREAM


def test_exported_names_are_pinned() -> None:
    assert sorted(node.streams.__all__) == sorted(
        [
            "ALPN", "DEFAULT_BUFFER_SIZE", "AlreadyExists", "Backoff", "ChannelCondition",
            "ChannelInfo", "ChannelState", "Closed", "Condition", "Consumer", "ConsumerBuilder",
            "ConsumerClosed", "ConsumerConfig", "Criteria", "Full", "InvalidDatum", "Lagging",
            "Offline", "Producer", "ProducerBuilder", "ProducerConfig", "SendError",
            "StartStream", "Streams", "StreamsError", "Subscribe", "When", "default_stream_id",
            "minimum_of", "with_predicate", "with_tags",
        ]
    )  # fmt: skip
    for name in node.streams.__all__:
        assert getattr(node.streams, name) is not None


def test_error_tree() -> None:
    assert issubclass(StreamsError, MosaikError)
    for error in (Offline, Full, Closed):
        assert issubclass(error, SendError)
    assert node.streams.ALPN == "/mosaik/streams/1"


def test_stream_ids_come_from_qualified_names_or_are_given() -> None:
    assert resolve_stream_id(Reading, None) == default_stream_id(Reading)
    assert resolve_stream_id(Reading, "x") == resolve_stream_id(bytes, "x")
    assert resolve_stream_id(Reading, STREAM) == STREAM
    with pytest.raises(ConfigError, match="stream_id: expected a name or a Digest"):
        resolve_stream_id(Reading, 42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no qualified name"):
        default_stream_id(object())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"buffer_size": 0}, "buffer_size: expected a positive integer"),
        ({"max_consumers": -1}, "max_consumers: expected a positive integer"),
        ({"online_when": 1}, "online_when: expected a Condition"),
        ({"lagging": "slow"}, "lagging: expected a Lagging policy"),
        ({"lag_timeout": -1}, "lag_timeout: expected seconds >= 0"),
        ({"undelivered": "sink"}, "undelivered: expected a callable"),
    ],
)
def test_producer_options_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProducerConfig(stream_id=STREAM, datum_type=Reading, **options)  # type: ignore[arg-type]


def test_consumer_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="buffer_size"):
        ConsumerConfig(stream_id=STREAM, datum_type=Reading, buffer_size=0)
    with pytest.raises(ConfigError, match="backoff: expected a Backoff"):
        ConsumerConfig(stream_id=STREAM, datum_type=Reading, backoff=1)  # type: ignore[arg-type]


async def test_facade_options_are_checked(make_node: MakeNode) -> None:
    net = await make_node()
    with pytest.raises(ConfigError, match="lagging: expected one of 'disconnect', 'drop'"):
        streams(net).produce(Reading, lagging="sometimes")
    with pytest.raises(ConfigError, match="require: expected callables"):
        streams(net).consume(Reading, require=["tag"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="is not a ticket validator"):
        streams(net).consume(Reading, require_ticket=[object()])  # type: ignore[list-item]
    producer = streams(net).producer(Reading).lagging(Lagging.DROP).buffer_size(8).build()
    assert producer.config.lagging is Lagging.DROP and producer.config.buffer_size == 8
    consumer = streams(net).consumer(Reading).online_when(minimum_of(2)).backoff(Backoff()).build()
    assert not consumer.when.is_online
    await streams(net).close()
    with pytest.raises(ConfigError, match="closed"):
        streams(net).consume(Reading)
