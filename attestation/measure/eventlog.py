"""Event logs: the CCEL binary (TCG crypto-agile, SHA-384) and JSON event lists.

CCEL layout (TCG PC Client PFP, "crypto agile"): a legacy TCG_PCR_EVENT header whose data is
the ``Spec ID Event03`` record listing the digest algorithms and sizes, then TCG_PCR_EVENT2
records ``u32 MrIndex | u32 type | u32 count | count x (u16 alg, digest) | u32 size | data``
until the end of the data or 0xFF/0x00 padding. MrIndex is the RTMR index + 1 (0 = MRTD).

JSON event lists (dstack's shape): ``[{"imr": 0..3, "event_type": int, "digest": hex,
"event": name, "event_payload": hex}, ...]``, bare or under an ``event_log`` key (as a list
or as JSON text). Runtime events (type 0x08000001) may leave ``digest`` empty: it is then
``SHA384(u32_le(type) || ":" || event || ":" || payload)``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from attestation.measure._files import read_input
from attestation.measure.errors import EventLogError
from attestation.measure.events import (
    DIGEST_SIZE,
    DSTACK_RUNTIME_EVENT,
    EV_ACTION,
    EV_EFI_ACTION,
    EV_EFI_HANDOFF_TABLES2,
    EV_EFI_PLATFORM_FIRMWARE_BLOB2,
    EV_EFI_VARIABLE_AUTHORITY,
    EV_EFI_VARIABLE_BOOT,
    EV_EFI_VARIABLE_BOOT2,
    EV_EFI_VARIABLE_DRIVER_CONFIG,
    EV_EVENT_TAG,
    EV_NO_ACTION,
    EV_PLATFORM_CONFIG_FLAGS,
    RTMR_COUNT,
    dstack_runtime_digest,
    event_type_name,
)

TPM_ALG_SHA384: Final = 0x000C
_SPEC_ID_SIGNATURE: Final = b"Spec ID Event03\0"
_VARIABLE_TYPES: Final = frozenset(
    {
        EV_EFI_VARIABLE_DRIVER_CONFIG,
        EV_EFI_VARIABLE_BOOT,
        EV_EFI_VARIABLE_BOOT2,
        EV_EFI_VARIABLE_AUTHORITY,
    }
)
_TEXT_TYPES: Final = frozenset({EV_EFI_ACTION, EV_ACTION, EV_PLATFORM_CONFIG_FLAGS})
_PASCAL_TEXT_TYPES: Final = frozenset({EV_EFI_PLATFORM_FIRMWARE_BLOB2, EV_EFI_HANDOFF_TABLES2})


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event of a log. ``register`` is the RTMR index (None: an MRTD-time event)."""

    index: int
    register: int | None
    event_type: int
    digest: bytes
    payload: bytes = field(repr=False)
    name: str
    digest_from_payload: bool = False

    @property
    def description(self) -> str:
        kind = event_type_name(self.event_type)
        return f"{kind} {self.name}" if self.name else kind


@dataclass(frozen=True, slots=True)
class EventLog:
    source: str
    format: str  # "ccel" or "json"
    events: tuple[LogEvent, ...]


def load_event_log(path: str | Path) -> EventLog:
    """Read a CCEL binary or a JSON event list from ``path`` (format detected)."""
    data = read_input(path, "event log")
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventLogError(str(path), f"not a valid JSON event list: {exc}") from None
        return EventLog(str(path), "json", parse_json_events(document, str(path)))
    return EventLog(str(path), "ccel", parse_ccel(data, str(path)))


def parse_ccel(data: bytes, source: str = "CCEL") -> tuple[LogEvent, ...]:
    """Parse a TCG crypto-agile event log with SHA-384 digests."""
    if data[:4] == b"CCEL":
        raise EventLogError(
            source,
            "this is the CCEL ACPI table header, not the log; read the log from "
            "/sys/firmware/acpi/tables/data/CCEL",
        )
    reader = _Reader(data, source)
    reader.need(32, "the header event")
    _mr, kind, _sha1, size = struct.unpack_from("<II20sI", data, 0)
    if kind != EV_NO_ACTION:
        raise EventLogError(source, "not a TCG event log: the first event is not EV_NO_ACTION")
    reader.offset = 32
    reader.need(size, "the Spec ID event")
    sizes = _spec_id_digest_sizes(data[32 : 32 + size], source)
    if TPM_ALG_SHA384 not in sizes:
        raise EventLogError(source, "the log records no SHA-384 digests")
    reader.offset = 32 + size
    events: list[LogEvent] = []
    while reader.remaining() and not _is_padding(data[reader.offset : reader.offset + 8]):
        start = reader.offset
        mr_index, kind, count = reader.unpack("<III", f"event {len(events)} header")
        digest = b""
        for _ in range(count):
            (algorithm,) = reader.unpack("<H", f"event {len(events)} digest algorithm")
            if algorithm not in sizes:
                raise EventLogError(
                    source,
                    f"event {len(events)} at offset {start:#x} uses undeclared digest algorithm "
                    f"{algorithm:#x}",
                )
            value = reader.take(sizes[algorithm], f"event {len(events)} digest")
            if algorithm == TPM_ALG_SHA384:
                digest = value
        (size,) = reader.unpack("<I", f"event {len(events)} size")
        payload = reader.take(size, f"event {len(events)} data")
        if kind == EV_NO_ACTION:
            continue
        if not digest:
            raise EventLogError(
                source, f"event {len(events)} at offset {start:#x} has no SHA-384 digest"
            )
        if mr_index > RTMR_COUNT:
            raise EventLogError(
                source, f"event {len(events)} at offset {start:#x} has MR index {mr_index}"
            )
        register = mr_index - 1 if mr_index else None
        events.append(
            LogEvent(len(events), register, kind, digest, payload, _describe(kind, payload))
        )
    return tuple(events)


def parse_json_events(document: object, source: str = "event log") -> tuple[LogEvent, ...]:
    """Parse a JSON event list (bare, or under ``event_log`` as a list or JSON text)."""
    items: Any = document
    if isinstance(items, dict):
        if "event_log" not in items:
            raise EventLogError(source, "JSON object has no 'event_log' key")
        items = items["event_log"]
        if isinstance(items, str):
            try:
                items = json.loads(items)
            except json.JSONDecodeError as exc:
                raise EventLogError(source, f"event_log text is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise EventLogError(source, "expected a list of events")
    return tuple(_json_event(item, index, source) for index, item in enumerate(items))


def _json_event(item: object, index: int, source: str) -> LogEvent:
    where = f"event {index}"
    if not isinstance(item, dict):
        raise EventLogError(source, f"{where}: expected an object")
    register = item.get("imr")
    kind = item.get("event_type")
    if (
        not isinstance(register, int)
        or isinstance(register, bool)
        or not 0 <= register < RTMR_COUNT
    ):
        raise EventLogError(source, f"{where}: 'imr' must be an RTMR index 0..3, got {register!r}")
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise EventLogError(source, f"{where}: 'event_type' must be an integer")
    name = item.get("event", "")
    if not isinstance(name, str):
        raise EventLogError(source, f"{where}: 'event' must be a string")
    payload = _hex(item.get("event_payload", ""), f"{where} event_payload", source)
    digest = _hex(item.get("digest", ""), f"{where} digest", source)
    computed = False
    if not digest:
        if kind != DSTACK_RUNTIME_EVENT:
            raise EventLogError(source, f"{where} ({event_type_name(kind)}): empty 'digest'")
        digest, computed = dstack_runtime_digest(kind, name, payload), True
    if len(digest) != DIGEST_SIZE:
        raise EventLogError(
            source, f"{where}: digest has {len(digest)} bytes, expected {DIGEST_SIZE}"
        )
    return LogEvent(index, register, kind, digest, payload, name, computed)


def _hex(value: object, what: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise EventLogError(source, f"{what}: expected a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise EventLogError(source, f"{what}: not hex") from None


def _spec_id_digest_sizes(spec: bytes, source: str) -> dict[int, int]:
    if not spec.startswith(_SPEC_ID_SIGNATURE) or len(spec) < 28:
        raise EventLogError(source, "not a crypto-agile log: no 'Spec ID Event03' header")
    (count,) = struct.unpack_from("<I", spec, 24)
    if len(spec) < 28 + 4 * count:
        raise EventLogError(source, "truncated: Spec ID event lists more algorithms than it holds")
    return dict(struct.unpack_from("<HH", spec, 28 + 4 * i) for i in range(count))


def _is_padding(head: bytes) -> bool:
    """Unused log space is erased flash (0xFF) or zeroes; an event never starts that way."""
    return head in (b"\xff" * len(head), bytes(len(head)))


def _describe(kind: int, payload: bytes) -> str:
    if kind in _VARIABLE_TYPES and len(payload) >= 32:
        name_chars, _ = struct.unpack_from("<QQ", payload, 16)
        return payload[32 : 32 + 2 * name_chars].decode("utf-16-le", "replace")
    if kind in _TEXT_TYPES:
        return _printable(payload)
    if kind in _PASCAL_TEXT_TYPES and payload:
        return _printable(payload[1 : 1 + payload[0]])
    if kind == EV_EVENT_TAG and len(payload) >= 8:
        return _printable(payload[8:])
    return ""


def _printable(raw: bytes) -> str:
    text = raw.rstrip(b"\0").decode("ascii", "replace")
    return "".join(c for c in text if c.isprintable())[:64]


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source
        self.offset = 0

    def remaining(self) -> int:
        return len(self.data) - self.offset

    def need(self, size: int, what: str) -> None:
        if self.offset + size > len(self.data):
            raise EventLogError(
                self.source, f"truncated: {what} at offset {self.offset:#x} needs {size} bytes"
            )

    def take(self, size: int, what: str) -> bytes:
        self.need(size, what)
        value = self.data[self.offset : self.offset + size]
        self.offset += size
        return value

    def unpack(self, fmt: str, what: str) -> tuple[int, ...]:
        raw = self.take(struct.calcsize(fmt), what)
        return struct.unpack(fmt, raw)
