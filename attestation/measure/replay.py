"""Replaying an event log into RTMR values and locating the event that diverges.

A replay alone only shows *that* a register differs from the quote. The event responsible is
pinpointed in two ways: events whose digest can be recomputed from their own data (separators,
EFI actions, EFI variables, dstack runtime events) are checked against it, and when reference
events are given (an offline measurement's event list or a known-good log) the log is compared
with them position by position, register by register.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from attestation.measure.eventlog import LogEvent
from attestation.measure.events import (
    DSTACK_RUNTIME_EVENT,
    EV_ACTION,
    EV_EFI_ACTION,
    EV_EFI_VARIABLE_BOOT,
    EV_EFI_VARIABLE_DRIVER_CONFIG,
    EV_SEPARATOR,
    RTMR_COUNT,
    MeasuredEvent,
    dstack_runtime_digest,
    fold,
    register_name,
    sha384,
)

_DIGEST_OF_PAYLOAD: Final = frozenset(
    {EV_SEPARATOR, EV_EFI_ACTION, EV_ACTION, EV_EFI_VARIABLE_DRIVER_CONFIG}
)


@dataclass(frozen=True, slots=True)
class Divergence:
    """An event that does not fit: ``position`` counts within its register, from 0."""

    register: int
    position: int
    log_index: int | None
    event: str
    reason: str
    expected: bytes | None = None
    actual: bytes | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "register": register_name(self.register),
            "position": self.position,
            "log_index": self.log_index,
            "event": self.event,
            "reason": self.reason,
            "expected": None if self.expected is None else self.expected.hex(),
            "actual": None if self.actual is None else self.actual.hex(),
        }

    def describe(self) -> str:
        where = f"{register_name(self.register).upper()} event {self.position}"
        if self.log_index is not None:
            where += f" (log #{self.log_index})"
        text = f"{where} {self.event}: {self.reason}"
        if self.expected is not None:
            text += f"; expected {self.expected.hex()}"
        if self.actual is not None:
            text += f", log has {self.actual.hex()}"
        return text


@dataclass(frozen=True, slots=True)
class RegisterResult:
    register: int
    value: bytes
    events: int
    expected: bytes | None = None

    @property
    def matches(self) -> bool | None:
        """True/False against the expected value; None when nothing was expected."""
        return None if self.expected is None else self.value == self.expected


@dataclass(frozen=True, slots=True)
class ReplayReport:
    registers: tuple[RegisterResult, ...]
    divergences: tuple[Divergence, ...]

    @property
    def ok(self) -> bool:
        return not self.divergences and all(r.matches is not False for r in self.registers)

    def value(self, register: int) -> bytes:
        return self.registers[register].value

    def to_json(self) -> dict[str, object]:
        return {
            "registers": {
                register_name(r.register): {
                    "value": r.value.hex(),
                    "expected": None if r.expected is None else r.expected.hex(),
                    "matches": r.matches,
                    "events": r.events,
                }
                for r in self.registers
            },
            "divergences": [d.to_json() for d in self.divergences],
            "ok": self.ok,
        }


def replay(
    events: Sequence[LogEvent],
    *,
    expected: Mapping[int, bytes] | None = None,
    reference: Sequence[MeasuredEvent] | None = None,
) -> ReplayReport:
    """Replay ``events`` into RTMR0-3; compare with ``expected`` values and ``reference`` events."""
    per_register: list[list[LogEvent]] = [[] for _ in range(RTMR_COUNT)]
    for event in events:
        if event.register is not None:
            per_register[event.register].append(event)
    results = tuple(
        RegisterResult(
            register,
            fold(e.digest for e in chain),
            len(chain),
            None if expected is None else expected.get(register),
        )
        for register, chain in enumerate(per_register)
    )
    divergences: list[Divergence] = []
    for register, chain in enumerate(per_register):
        divergences += _self_inconsistent(register, chain)
    if reference is not None:
        for register, chain in enumerate(per_register):
            wanted = [e for e in reference if e.register == register]
            if wanted:
                divergence = _first_difference(register, chain, wanted)
                if divergence is not None:
                    divergences.append(divergence)
    divergences.sort(key=lambda d: (d.register, d.position))
    return ReplayReport(results, tuple(divergences))


def _self_inconsistent(register: int, chain: list[LogEvent]) -> list[Divergence]:
    found = []
    for position, event in enumerate(chain):
        recomputed = _digest_from_payload(event)
        if recomputed is not None and recomputed != event.digest:
            found.append(
                Divergence(
                    register,
                    position,
                    event.index,
                    event.description,
                    "digest does not match the event's own data",
                    expected=recomputed,
                    actual=event.digest,
                )
            )
    return found


def _digest_from_payload(event: LogEvent) -> bytes | None:
    if not event.payload or event.digest_from_payload:
        return None
    if event.event_type in _DIGEST_OF_PAYLOAD:
        return sha384(event.payload)
    if event.event_type == EV_EFI_VARIABLE_BOOT and len(event.payload) >= 32:
        (name_chars,) = struct.unpack_from("<Q", event.payload, 16)
        return sha384(event.payload[32 + 2 * name_chars :])
    if event.event_type == DSTACK_RUNTIME_EVENT:
        return dstack_runtime_digest(event.event_type, event.name, event.payload)
    return None


def _first_difference(
    register: int, chain: list[LogEvent], wanted: list[MeasuredEvent]
) -> Divergence | None:
    for position, (event, reference) in enumerate(zip(chain, wanted, strict=False)):
        if event.digest != reference.digest:
            return Divergence(
                register,
                position,
                event.index,
                event.description,
                f"differs from the expected '{reference.name}'",
                expected=reference.digest,
                actual=event.digest,
            )
    if len(chain) < len(wanted):
        missing = wanted[len(chain)]
        return Divergence(
            register,
            len(chain),
            None,
            missing.name,
            "expected event is missing from the log",
            missing.digest,
        )
    if len(chain) > len(wanted):
        extra = chain[len(wanted)]
        return Divergence(
            register,
            len(wanted),
            extra.index,
            extra.description,
            "unexpected extra event in the log",
            actual=extra.digest,
        )
    return None
