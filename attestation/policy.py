"""Verification policy: what a DCAP-verified TDX quote must also satisfy to be accepted.

dcap-qvl proves a quote came from a genuine TDX module and reports its TCB status; it does not
decide whether that status, the TD's attributes or its measurements are acceptable. This module
does, one named rule at a time, so a rejection says exactly which rule failed.

Policy file (JSON)::

    {
      "tcb_statuses": ["UpToDate"],              # allowed statuses (default: UpToDate only)
      "rejected_advisories": ["INTEL-SA-00837"],  # refused even when the status is allowed
      "allow_debug": false,                       # only false (see below)
      "require_sept_ve_disable": true,            # only true (see below)
      "td_attributes": {"value": "<16 hex>", "mask": "<16 hex>"},  # quote byte order
      "xfam": {"value": "<16 hex>", "mask": "<16 hex>"},
      "mr_config_id": ["<96 hex>", ...],          # allowed values (default: all zero)
      "mr_owner": [...], "mr_owner_config": [...],
      "report_data": "<128 hex>",                 # exact expected REPORTDATA
      "max_quote_age_seconds": 600,
      "measurements": [                           # or "any" (explicit opt-out)
        {"measurement_id": "image-2025-07",
         "measurements": {"mrtd": {"expected_any": ["<96 hex>", ...]},
                          "rtmr1": {"expected": "<96 hex>"}}}
      ]
    }

A record matches when every register it lists holds one of its values; the quote passes when
some record matches. Record keys follow cvm-reverse-proxy's measurement files in spirit: register
names ``mrtd``/``rtmr0``..``rtmr3`` (or its dcap-tdx indices ``"0"``..``"4"``), each with
``expected_any`` (or a single ``expected``). A bare JSON list is read as ``measurements`` with
every other rule at its default.

Fixed TD attribute rules, not policy options: DEBUG clear (bit 0, else the host can read and
write the TD's memory), SEPT_VE_DISABLE set (bit 28), no profiling, SERVTD_EXT, migration or
reserved bits, and for TD 1.5 MRSERVICETD zero. dcap-qvl 0.7 refuses any quote breaking them
after its signature checks, so no policy could relax them; `Policy.check_td` applies them too,
for use without dcap-qvl.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from attestation.errors import PolicyError, PolicyViolation
from attestation.quote import Quote, TdReport

TCB_STATUSES: Final = frozenset(
    {
        "UpToDate",
        "SWHardeningNeeded",
        "ConfigurationNeeded",
        "ConfigurationAndSWHardeningNeeded",
        "OutOfDate",
        "OutOfDateConfigurationNeeded",
        "TDRelaunchAdvised",
        "TDRelaunchAdvisedConfigurationNeeded",
        "Revoked",
    }
)
REGISTERS: Final = ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3")
_REGISTER_ALIASES: Final = {str(i): name for i, name in enumerate(REGISTERS)}
_ATTESTATION_TYPES: Final = frozenset({"dcap-tdx", "qemu-tdx", "gcp-tdx"})
ZERO48: Final = bytes(48)

ReportDataCheck = bytes | Callable[[bytes], bool]


def register_value(report: TdReport, register: str) -> bytes:
    """The value of ``mrtd`` or ``rtmr0``..``rtmr3`` in a TD report."""
    return report.mr_td if register == "mrtd" else report.rtmrs[int(register[-1])]


@dataclass(frozen=True, slots=True)
class MeasurementRecord:
    """A named set of accepted register values; matches when every listed register matches."""

    measurement_id: str
    expected: tuple[tuple[str, frozenset[bytes]], ...]

    @classmethod
    def of(cls, measurement_id: str, **registers: Iterable[bytes] | bytes) -> MeasurementRecord:
        """``MeasurementRecord.of("img", mrtd=[a, b], rtmr1=c)``."""
        expected = []
        for name in REGISTERS:
            if name in registers:
                values = registers.pop(name)
                expected.append(
                    (name, frozenset([values] if isinstance(values, bytes) else values))
                )
        if registers:
            raise PolicyError(measurement_id, f"unknown registers {sorted(registers)}")
        return cls(measurement_id, tuple(expected))

    @staticmethod
    def registers_from_document(document: object) -> dict[str, bytes]:
        """Register values from a measurements JSON: an object mapping ``mrtd``/``rtmr0``..
        ``rtmr3`` (or ``"0"``..``"4"``) to hex, at the top level or under ``measurements``;
        values may also be ``{"expected": hex}``. Other keys (metadata) are ignored."""
        doc = document
        if isinstance(doc, dict) and isinstance(doc.get("measurements"), dict):
            doc = doc["measurements"]
        if not isinstance(doc, dict):
            raise PolicyError("measurements", "expected a JSON object of register values")
        found: dict[str, bytes] = {}
        for key, value in doc.items():
            name = _REGISTER_ALIASES.get(key, key)
            if name not in REGISTERS:
                continue
            if name in found:
                raise PolicyError(key, f"{name} given twice")
            if isinstance(value, dict) and set(value) == {"expected"}:
                value = value["expected"]
            found[name] = parse_hex(value, 48, key)
        if not found:
            raise PolicyError("measurements", f"no register among {', '.join(REGISTERS)}")
        return found

    def __post_init__(self) -> None:
        where = f"measurements[{self.measurement_id!r}]"
        if not self.measurement_id:
            raise PolicyError(where, "measurement_id is empty")
        if not self.expected:
            raise PolicyError(where, "lists no register, so it would match any quote")
        for name, values in self.expected:
            if name not in REGISTERS:
                raise PolicyError(f"{where}.{name}", f"unknown register (use {REGISTERS})")
            if not values:
                raise PolicyError(f"{where}.{name}", "no accepted value")
            for value in values:
                if not isinstance(value, bytes) or len(value) != 48:
                    raise PolicyError(f"{where}.{name}", "values must be 48 bytes")

    def mismatches(self, report: TdReport) -> list[str]:
        """The registers of ``report`` this record does not accept, in register order."""
        return [
            name for name, values in self.expected if register_value(report, name) not in values
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "measurement_id": self.measurement_id,
            "measurements": {
                name: {"expected_any": sorted(v.hex() for v in values)}
                for name, values in self.expected
            },
        }


@dataclass(frozen=True, slots=True)
class MaskedValue:
    """An 8-byte field constraint: ``actual & mask == value & mask`` (quote byte order)."""

    value: bytes
    mask: bytes

    def __post_init__(self) -> None:
        if len(self.value) != 8 or len(self.mask) != 8:
            raise PolicyError("masked value", "value and mask must be 8 bytes each")

    def matches(self, actual: bytes) -> bool:
        mask = int.from_bytes(self.mask, "little")
        return (
            int.from_bytes(actual, "little") & mask == int.from_bytes(self.value, "little") & mask
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """What a verified quote must satisfy. Defaults are strict; ``measurements=None`` means no
    measurement allow-list (files must say ``"measurements": "any"`` to get that)."""

    allowed_tcb_statuses: frozenset[str] = frozenset({"UpToDate"})
    rejected_advisories: frozenset[str] = frozenset()
    td_attributes: MaskedValue | None = None
    xfam: MaskedValue | None = None
    mr_config_id: frozenset[bytes] = frozenset({ZERO48})
    mr_owner: frozenset[bytes] = frozenset({ZERO48})
    mr_owner_config: frozenset[bytes] = frozenset({ZERO48})
    measurements: tuple[MeasurementRecord, ...] | None = None
    report_data: ReportDataCheck | None = field(default=None, compare=False)
    max_quote_age: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.allowed_tcb_statuses) - TCB_STATUSES
        if unknown:
            raise PolicyError(
                "tcb_statuses", f"unknown {sorted(unknown)}; use {sorted(TCB_STATUSES)}"
            )
        if not self.allowed_tcb_statuses:
            raise PolicyError("tcb_statuses", "empty: no quote could ever pass")
        for key in ("mr_config_id", "mr_owner", "mr_owner_config"):
            values = getattr(self, key)
            if not values or any(not isinstance(v, bytes) or len(v) != 48 for v in values):
                raise PolicyError(key, "needs at least one value, each 48 bytes")
        if self.measurements is not None:
            if not self.measurements:
                raise PolicyError("measurements", 'empty list matches nothing; use "any"')
            ids = [r.measurement_id for r in self.measurements]
            if len(set(ids)) != len(ids):
                raise PolicyError("measurements", "duplicate measurement_id")
        if isinstance(self.report_data, bytes) and len(self.report_data) != 64:
            raise PolicyError("report_data", "must be exactly 64 bytes")
        if self.max_quote_age is not None and self.max_quote_age < 0:
            raise PolicyError("max_quote_age_seconds", "must not be negative")

    def with_report_data(self, expected: ReportDataCheck | None) -> Policy:
        """This policy, binding REPORTDATA to ``expected`` (64 bytes or a predicate)."""
        return dataclasses.replace(self, report_data=expected)

    # -- evaluation ------------------------------------------------------------------------------

    def check(
        self,
        quote: Quote,
        *,
        tcb_status: str,
        advisory_ids: Iterable[str] = (),
        now: int,
        quote_time: int | None = None,
    ) -> str | None:
        """Apply every rule to a quote dcap-qvl verified; return the matched measurement id.

        Raises ``PolicyViolation`` whose ``rule`` names the first rule that fails.
        """
        self.check_tcb(tcb_status, advisory_ids)
        return self.check_td(quote, now=now, quote_time=quote_time)

    def check_tcb(self, tcb_status: str, advisory_ids: Iterable[str] = ()) -> None:
        """The platform rules: allowed TCB status, refused advisories."""
        if tcb_status not in self.allowed_tcb_statuses:
            allowed = ", ".join(sorted(self.allowed_tcb_statuses))
            raise PolicyViolation("tcb_status", f"{tcb_status} is not allowed (allowed: {allowed})")
        refused = sorted(set(advisory_ids) & self.rejected_advisories)
        if refused:
            raise PolicyViolation("advisories", f"platform is affected by {', '.join(refused)}")

    def check_td(self, quote: Quote, *, now: int, quote_time: int | None = None) -> str | None:
        """The TD rules (attributes, owner fields, measurements, report data, quote age);
        return the matched measurement id. Alone, this proves nothing about the signature."""
        report = quote.td_report
        _check_fixed_td_rules(report)
        if self.td_attributes is not None and not self.td_attributes.matches(report.td_attributes):
            raise PolicyViolation(
                "td_attributes.mask", _masked_detail(report.td_attributes, self.td_attributes)
            )
        if self.xfam is not None and not self.xfam.matches(report.xfam):
            raise PolicyViolation("xfam", _masked_detail(report.xfam, self.xfam))
        for key in ("mr_config_id", "mr_owner", "mr_owner_config"):
            actual = getattr(report, key)
            if actual not in getattr(self, key):
                raise PolicyViolation(key, f"{actual.hex()} is not an expected value")
        matched = self._match_measurements(report)
        self._check_report_data(report.report_data)
        if self.max_quote_age is not None:
            _check_quote_age(self.max_quote_age, now, quote_time)
        return matched

    def _match_measurements(self, report: TdReport) -> str | None:
        if self.measurements is None:
            return None
        misses = []
        for record in self.measurements:
            mismatched = record.mismatches(report)
            if not mismatched:
                return record.measurement_id
            misses.append((len(mismatched), record.measurement_id, mismatched))
        # Name the register that kept the closest record from matching.
        _, closest_id, mismatched = min(misses, key=lambda m: m[0])
        detail = "; ".join(f"{rid}: {', '.join(regs)} differ" for _, rid, regs in misses)
        register = mismatched[0]
        raise PolicyViolation(
            f"measurements.{register}",
            f"{register}={register_value(report, register).hex()} matches no record "
            f"(closest {closest_id!r}; {detail})",
        )

    def _check_report_data(self, actual: bytes) -> None:
        expected = self.report_data
        if expected is None:
            return
        if isinstance(expected, bytes):
            if actual != expected:
                raise PolicyViolation(
                    "report_data", f"{actual.hex()} is not the expected {expected.hex()}"
                )
            return
        try:
            accepted = expected(actual)
        except Exception as exc:  # the caller's predicate: report its failure as a rejection
            raise PolicyViolation("report_data", f"binding check raised {exc!r}") from exc
        if not accepted:
            raise PolicyViolation(
                "report_data", f"{actual.hex()} does not satisfy the binding check"
            )

    # -- JSON ------------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Load a policy file; ``PolicyError`` names the file, the key and what is wrong."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError("", f"cannot read {path}: {exc}") from None
        try:
            return cls.from_json(text)
        except PolicyError as exc:
            raise PolicyError(exc.key, f"{exc.message} (in {path})") from None

    @classmethod
    def from_json(cls, document: str | bytes | Mapping[str, Any] | list[Any]) -> Policy:
        """Build a policy from JSON text or its decoded value."""
        if isinstance(document, str | bytes):
            try:
                document = json.loads(document)
            except (ValueError, RecursionError) as exc:
                raise PolicyError("", f"not valid JSON: {exc}") from None
        return _policy_from_document(document)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (a policy with a callable ``report_data`` cannot be written)."""
        if self.report_data is not None and not isinstance(self.report_data, bytes):
            raise PolicyError("report_data", "a callable binding cannot be written to JSON")
        doc: dict[str, Any] = {
            "tcb_statuses": sorted(self.allowed_tcb_statuses),
            "rejected_advisories": sorted(self.rejected_advisories),
            "mr_config_id": sorted(v.hex() for v in self.mr_config_id),
            "mr_owner": sorted(v.hex() for v in self.mr_owner),
            "mr_owner_config": sorted(v.hex() for v in self.mr_owner_config),
            "measurements": "any"
            if self.measurements is None
            else [r.to_dict() for r in self.measurements],
        }
        for key in ("td_attributes", "xfam"):
            masked = getattr(self, key)
            if masked is not None:
                doc[key] = {"value": masked.value.hex(), "mask": masked.mask.hex()}
        if self.report_data is not None:
            doc["report_data"] = self.report_data.hex()
        if self.max_quote_age is not None:
            doc["max_quote_age_seconds"] = self.max_quote_age
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


# TDATTRIBUTES bits refused whatever the policy, with their rule; mirrors dcap-qvl 0.7, which
# allows only bits 16, 18-22, 27, 28 (SEPT_VE_DISABLE), 30 (PKS), 31 (KL), 62 and 63 (PERFMON).
_TD_ATTRIBUTE_RULES: Final = (
    (1 << 0, "td_attributes.debug", "DEBUG is set: the host can read and write the TD"),
    (0b111 << 4, "td_attributes.profiling", "TD profiling is enabled"),
    (1 << 17, "td_attributes.servtd_ext", "SERVTD_EXT is enabled"),
    (1 << 29, "td_attributes.migratable", "the TD is migratable"),
)
_TD_ATTRIBUTES_ALLOWED: Final = (
    1 << 16 | 0b11111 << 18 | 1 << 27 | 1 << 28 | 1 << 30 | 1 << 31 | 1 << 62 | 1 << 63
)


def _check_fixed_td_rules(report: TdReport) -> None:
    attributes = report.td_attributes_value
    for bits, rule, detail in _TD_ATTRIBUTE_RULES:
        if attributes & bits:
            raise PolicyViolation(rule, detail)
    reserved = attributes & ~_TD_ATTRIBUTES_ALLOWED
    if reserved:
        raise PolicyViolation("td_attributes.reserved", f"reserved bits {reserved:#x} are set")
    if not report.sept_ve_disable:
        raise PolicyViolation("td_attributes.sept_ve_disable", "SEPT_VE_DISABLE is not set")
    if report.mr_service_td not in (None, ZERO48):
        raise PolicyViolation("mr_service_td", "MRSERVICETD is not zero (a service TD is bound)")


def _masked_detail(actual: bytes, expected: MaskedValue) -> str:
    return f"{actual.hex()} does not match {expected.value.hex()} under mask {expected.mask.hex()}"


def _check_quote_age(max_age: int, now: int, quote_time: int | None) -> None:
    if quote_time is None:
        raise PolicyViolation(
            "freshness.quote_time", "the policy limits quote age but no quote time was given"
        )
    if quote_time > now:
        raise PolicyViolation(
            "freshness.quote_time", f"quote time {quote_time} is after now ({now})"
        )
    if now - quote_time > max_age:
        raise PolicyViolation(
            "freshness.quote_age", f"quote is {now - quote_time} s old (limit {max_age} s)"
        )


# -- JSON decoding -------------------------------------------------------------------------------

_TOP_KEYS: Final = frozenset(
    {
        "tcb_statuses",
        "rejected_advisories",
        "allow_debug",
        "require_sept_ve_disable",
        "td_attributes",
        "xfam",
        "mr_config_id",
        "mr_owner",
        "mr_owner_config",
        "report_data",
        "max_quote_age_seconds",
        "measurements",
    }
)


def parse_hex(text: object, size: int, key: str) -> bytes:
    """Decode ``size`` bytes of hex (an optional ``0x`` prefix allowed) or raise ``PolicyError``."""
    if not isinstance(text, str):
        raise PolicyError(key, f"expected a hex string, got {type(text).__name__}")
    digits = text[2:] if text[:2].lower() == "0x" else text
    if len(digits) != 2 * size:
        raise PolicyError(key, f"expected {2 * size} hex digits ({size} bytes), got {len(digits)}")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise PolicyError(key, "not hexadecimal") from None


def _policy_from_document(doc: object) -> Policy:
    if isinstance(doc, list):
        doc = {"measurements": doc}
    if not isinstance(doc, dict):
        raise PolicyError("", f"expected a JSON object or list, got {type(doc).__name__}")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise PolicyError(unknown[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    if "measurements" not in doc:
        raise PolicyError("measurements", 'missing: list the accepted measurements, or "any"')
    kwargs: dict[str, Any] = {}
    if "tcb_statuses" in doc:
        kwargs["allowed_tcb_statuses"] = frozenset(_strings(doc["tcb_statuses"], "tcb_statuses"))
    if "rejected_advisories" in doc:
        kwargs["rejected_advisories"] = frozenset(
            _strings(doc["rejected_advisories"], "rejected_advisories")
        )
    if "allow_debug" in doc and doc["allow_debug"] is not False:
        raise PolicyError("allow_debug", "only false: DEBUG TDs are always refused")
    if "require_sept_ve_disable" in doc and doc["require_sept_ve_disable"] is not True:
        raise PolicyError("require_sept_ve_disable", "only true: dcap-qvl always requires it")
    for key in ("td_attributes", "xfam"):
        if key in doc:
            kwargs[key] = _masked(doc[key], key)
    for key in ("mr_config_id", "mr_owner", "mr_owner_config"):
        if key in doc:
            values = doc[key]
            if not isinstance(values, list) or not values:
                raise PolicyError(key, "expected a non-empty list of hex values")
            kwargs[key] = frozenset(parse_hex(v, 48, f"{key}[{i}]") for i, v in enumerate(values))
    if "report_data" in doc:
        kwargs["report_data"] = parse_hex(doc["report_data"], 64, "report_data")
    if "max_quote_age_seconds" in doc:
        age = doc["max_quote_age_seconds"]
        if isinstance(age, bool) or not isinstance(age, int) or age < 0:
            raise PolicyError("max_quote_age_seconds", "expected a non-negative integer")
        kwargs["max_quote_age"] = age
    kwargs["measurements"] = _measurements(doc["measurements"])
    return Policy(**kwargs)


def _strings(value: object, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(key, "expected a list of strings")
    return value


def _masked(value: object, key: str) -> MaskedValue:
    if not isinstance(value, dict) or set(value) != {"value", "mask"}:
        raise PolicyError(key, 'expected {"value": "<16 hex>", "mask": "<16 hex>"}')
    return MaskedValue(
        parse_hex(value["value"], 8, f"{key}.value"), parse_hex(value["mask"], 8, f"{key}.mask")
    )


def _measurements(value: object) -> tuple[MeasurementRecord, ...] | None:
    if value == "any":
        return None
    if not isinstance(value, list):
        raise PolicyError("measurements", 'expected a list of records or "any"')
    return tuple(_record(item, f"measurements[{i}]") for i, item in enumerate(value))


def _record(item: object, where: str) -> MeasurementRecord:
    if not isinstance(item, dict):
        raise PolicyError(where, "expected an object")
    unknown = sorted(set(item) - {"measurement_id", "attestation_type", "measurements"})
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}", "unknown key")
    measurement_id = item.get("measurement_id")
    if not isinstance(measurement_id, str) or not measurement_id:
        raise PolicyError(f"{where}.measurement_id", "expected a non-empty string")
    kind = item.get("attestation_type", "dcap-tdx")
    if kind not in _ATTESTATION_TYPES:
        raise PolicyError(
            f"{where}.attestation_type",
            f"{kind!r} is not a DCAP TDX type {sorted(_ATTESTATION_TYPES)}",
        )
    registers = item.get("measurements")
    if not isinstance(registers, dict) or not registers:
        raise PolicyError(f"{where}.measurements", "expected an object of registers")
    expected: dict[str, frozenset[bytes]] = {}
    for raw_name, spec in registers.items():
        name = _REGISTER_ALIASES.get(raw_name, raw_name)
        key = f"{where}.measurements.{raw_name}"
        if name not in REGISTERS:
            raise PolicyError(key, f"unknown register (use {', '.join(REGISTERS)} or 0..4)")
        if name in expected:
            raise PolicyError(key, f"{name} listed twice")
        expected[name] = _register_values(spec, key)
    return MeasurementRecord(
        measurement_id, tuple((name, expected[name]) for name in REGISTERS if name in expected)
    )


def _register_values(spec: object, key: str) -> frozenset[bytes]:
    if not isinstance(spec, dict) or len(spec) != 1 or not {"expected_any", "expected"} & set(spec):
        raise PolicyError(key, 'expected {"expected_any": [hex, ...]} or {"expected": hex}')
    if "expected" in spec:
        return frozenset({parse_hex(spec["expected"], 48, f"{key}.expected")})
    values = spec["expected_any"]
    if not isinstance(values, list) or not values:
        raise PolicyError(f"{key}.expected_any", "expected a non-empty list of hex values")
    return frozenset(parse_hex(v, 48, f"{key}.expected_any[{i}]") for i, v in enumerate(values))
