"""Builder forms: ``net.streams.producer(T).require(...).build()``.

They collect the same options as ``produce``/``consume`` keyword arguments, with ``require``
and ``require_ticket`` chainable (AND-composed). ``ProducerBuilder.build`` never returns an
existing producer: it raises ``AlreadyExists``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from node.primitives import StreamId
from node.streams.conditions import Condition, PeerPredicate
from node.streams.config import Backoff, Lagging
from node.tickets import TicketValidator

if TYPE_CHECKING:
    from node.streams.consumer import Consumer
    from node.streams.producer import Producer

T = TypeVar("T")
B = TypeVar("B")


class _Builder(Generic[T, B]):
    """The options producers and consumers share; ``build`` passes them to ``make``.

    ``make(datum_type, **options)`` takes the keyword arguments of ``Streams.produce`` or
    ``Streams.consume``.
    """

    def __init__(self, make: Callable[..., B], datum_type: type[T]) -> None:
        self._make = make
        self._datum_type = datum_type
        self._options: dict[str, Any] = {}
        self._require: list[PeerPredicate] = []
        self._tickets: list[TicketValidator] = []

    def _set(self, name: str, value: Any) -> None:
        self._options[name] = value

    def _collected(self) -> dict[str, Any]:
        return {**self._options, "require": self._require, "require_ticket": self._tickets}

    def stream_id(self, stream_id: str | StreamId) -> Self:
        self._set("stream_id", stream_id)
        return self

    def require(self, predicate: PeerPredicate) -> Self:
        """Deal only with peers whose ``PeerInfo`` passes ``predicate`` (and the others)."""
        self._require.append(predicate)
        return self

    def require_ticket(self, validator: TicketValidator) -> Self:
        self._tickets.append(validator)
        return self

    def online_when(self, condition: Condition) -> Self:
        self._set("online_when", condition)
        return self

    def buffer_size(self, size: int) -> Self:
        self._set("buffer_size", size)
        return self


class ProducerBuilder(_Builder[T, "Producer[T]"]):
    def max_consumers(self, limit: int) -> Self:
        self._set("max_consumers", limit)
        return self

    def lagging(self, policy: Lagging | str) -> Self:
        self._set("lagging", policy)
        return self

    def lag_timeout(self, seconds: float) -> Self:
        self._set("lag_timeout", seconds)
        return self

    def undelivered(self, sink: Callable[[T], object]) -> Self:
        self._set("undelivered", sink)
        return self

    def build(self) -> Producer[T]:
        """A new producer; ``AlreadyExists`` if this node produces the stream already."""
        return self._make(self._datum_type, **self._collected())


class ConsumerBuilder(_Builder[T, "Consumer[T]"]):
    def backoff(self, backoff: Backoff) -> Self:
        self._set("backoff", backoff)
        return self

    def build(self) -> Consumer[T]:
        return self._make(self._datum_type, **self._collected())
