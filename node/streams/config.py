"""Options of producers and consumers, validated once when they are created."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from node.errors import ConfigError
from node.primitives.digest import Digest, StreamId
from node.streams.conditions import Condition, PeerPredicate
from node.tickets.validation import TicketValidator

DEFAULT_BUFFER_SIZE = 1024
DEFAULT_LAG_TIMEOUT = 1.0
"""Seconds a consumer may hold a full producer buffer while its transport accepts nothing
before the lagging policy applies to it."""
PRODUCER_ONLINE = Condition(minimum=1)
"""A producer is online with at least one consumer, unless ``online_when`` says otherwise."""
CONSUMER_ONLINE = Condition(minimum=0)
"""A consumer is online from the start, unless ``online_when`` says otherwise."""
HANDSHAKE_TIMEOUT = 5.0
"""Seconds a subscription handshake may take on either side before the connection is closed."""


def default_stream_id(datum_type: Any) -> StreamId:
    """The stream id of a datum type: blake3 of ``f"{T.__module__}.{T.__qualname__}"``.

    Two programs agree on it when they import the type from the same module path; pass
    ``stream_id=`` when they do not, or when one type carries several streams.
    """
    module = getattr(datum_type, "__module__", None)
    qualname = getattr(datum_type, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise ConfigError(
            f"stream_id: {datum_type!r} has no qualified name to derive a stream id from; "
            "pass stream_id="
        )
    return Digest.from_name(f"{module}.{qualname}")


def resolve_stream_id(datum_type: Any, stream_id: str | StreamId | None) -> StreamId:
    if stream_id is None:
        return default_stream_id(datum_type)
    if not isinstance(stream_id, str | Digest):
        raise ConfigError(f"stream_id: expected a name or a Digest, got {stream_id!r}")
    return Digest.from_name(stream_id)


class Lagging(enum.Enum):
    """What a producer does with a consumer that cannot keep up."""

    DISCONNECT = "disconnect"
    """Close its connection with TooSlow; it reconnects and resumes from new datums."""
    DROP = "drop"
    """Keep it connected and drop the oldest datums it has not received yet."""


# A consumer is lagging when it holds the oldest datum of a full producer buffer and its
# transport has accepted nothing for ``lag_timeout`` seconds; until then the producer waits
# for it (a consumer that is slower but still reading paces the producer).


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial * multiplier**(attempt-1)`` capped at ``maximum``, with
    up to ``jitter`` of it added at random so consumers do not retry in lockstep."""

    initial: float = 0.2
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ConfigError(
                f"backoff: need 0 < initial <= maximum, got {self.initial} and {self.maximum}"
            )
        if self.multiplier < 1:
            raise ConfigError(f"backoff multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"backoff jitter must be within [0, 1], got {self.jitter}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt number ``attempt + 1`` (``attempt`` >= 1)."""
        exponent = min(max(attempt - 1, 0), 64)
        base = min(self.initial * self.multiplier**exponent, self.maximum)
        return base * (1 + self.jitter * rng.random())


def as_predicates(
    require: PeerPredicate | Iterable[PeerPredicate] | None,
) -> tuple[PeerPredicate, ...]:
    if require is None:
        return ()
    predicates = (require,) if callable(require) else tuple(require)
    for predicate in predicates:
        if not callable(predicate):
            raise ConfigError(f"require: expected callables on PeerInfo, got {predicate!r}")
    return predicates


def _positive(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    stream_id: StreamId
    datum_type: Any
    require: tuple[PeerPredicate, ...] = ()
    require_ticket: tuple[TicketValidator, ...] = ()
    online_when: Condition = PRODUCER_ONLINE
    max_consumers: int | None = None
    buffer_size: int = DEFAULT_BUFFER_SIZE
    lagging: Lagging = Lagging.DISCONNECT
    lag_timeout: float = DEFAULT_LAG_TIMEOUT
    undelivered: Callable[[Any], object] | None = None

    def __post_init__(self) -> None:
        _positive("max_consumers", self.max_consumers)
        if not isinstance(self.lag_timeout, int | float) or self.lag_timeout < 0:
            raise ConfigError(f"lag_timeout: expected seconds >= 0, got {self.lag_timeout!r}")
        _positive("buffer_size", self.buffer_size)
        if not isinstance(self.online_when, Condition):
            raise ConfigError(f"online_when: expected a Condition, got {self.online_when!r}")
        if not isinstance(self.lagging, Lagging):
            raise ConfigError(f"lagging: expected a Lagging policy, got {self.lagging!r}")
        if self.undelivered is not None and not callable(self.undelivered):
            raise ConfigError(f"undelivered: expected a callable, got {self.undelivered!r}")


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    stream_id: StreamId
    datum_type: Any
    require: tuple[PeerPredicate, ...] = ()
    require_ticket: tuple[TicketValidator, ...] = ()
    online_when: Condition = CONSUMER_ONLINE
    buffer_size: int = DEFAULT_BUFFER_SIZE
    backoff: Backoff = Backoff()

    def __post_init__(self) -> None:
        _positive("buffer_size", self.buffer_size)
        if not isinstance(self.online_when, Condition):
            raise ConfigError(f"online_when: expected a Condition, got {self.online_when!r}")
        if not isinstance(self.backoff, Backoff):
            raise ConfigError(f"backoff: expected a Backoff, got {self.backoff!r}")


def as_lagging(value: Lagging | str) -> Lagging:
    if isinstance(value, Lagging):
        return value
    try:
        return Lagging(value)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in Lagging)
        raise ConfigError(f"lagging: expected one of {choices}, got {value!r}") from None
