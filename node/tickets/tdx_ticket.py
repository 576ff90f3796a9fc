"""TDX tickets: a verified TDX quote whose REPORTDATA commits to the carrying peer.

Class id ``Digest.from_name("mosaik.tee.tdx.ticket.v1")``.

Binding. REPORTDATA (64 bytes) is fully determined by the ticket statement
(peer id, network id, the entry's ``start_ms``, ``quoted_at``, ``expiration``); with the
integers as 8-byte little-endian two's complement (``i64``):

    report_data[0:32]  = blake3 chain, as in the seed:
                         D("mosaik.tdx.ticket.extra").derive(peer id).derive(network id)
                          .derive(i64 start_ms).derive(i64 quoted_at).derive(i64 expiration)
                         where D(name) = blake3(name) and d.derive(x) = blake3(d || x)
    report_data[32:64] = blake3 in derive-key mode, context
                         "mosaik-py 2025 tdx ticket report-data tail", over
                         peer id || network id || i64 start_ms || i64 quoted_at || i64 expiration

The seed leaves bytes 32..64 zero and checks only the first half. We check all 64 bytes, so a
quote serves exactly one ticket statement and no REPORTDATA byte is left for other content;
the second half uses a separate blake3 mode and context, so a collision would have to hold in
two independent constructions at once. Every field has a fixed width, so neither encoding is
ambiguous. Binding ``start_ms`` ties the ticket to one run of the node (a restart mints anew);
a quote replayed by another peer, on another network, or by a later run fails "binding".

Ticket data: zlib(msgpack([quote, quoted_at, expiration, collateral])), where ``collateral``
is optional dcap-qvl ``QuoteCollateralV3`` JSON (UTF-8). The certificate chain in a quote and
the collateral's JSON compress well (a 5 KB quote to ~2.7 KB; quote plus collateral 21 KB to
~6 KB); decompression is bounded (``MAX_TICKET_SIZE``). TDX tickets always expire: TCB status
and collateral change, so a peer re-quotes before its ticket's ``expiration``.

Validation, cheap checks first: format, quoted_at (not in the future), expiration (not past,
after quoted_at), max_lifetime (expiration - quoted_at), max_age (now - quoted_at),
not_before (quoted at or after a cut-off), binding, then the quote itself through
``attestation.verify_quote`` (signature chain, TCB, collateral: check "quote"; our policy:
check "policy"), both raising ``QuoteRejected`` with the attestation rule that failed.
The verdict lasts until the earliest of ``expiration``, ``quoted_at + max_age`` and, for
collateral carried in the ticket, the collateral's ``not_after``.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol, TypeAlias

import blake3
import msgspec

from attestation.collateral import Collateral, as_collateral
from attestation.errors import (
    AttestationError,
    PolicyViolation,
    QuoteFormatError,
    VerificationFailed,
)
from attestation.policy import Policy
from attestation.quote import parse_quote
from attestation.verify import verify_quote
from node.primitives import Digest, PeerId, Ticket
from node.tickets.errors import MintError, QuoteRejected, TicketConfigError, TicketRejected
from node.tickets.validation import At, Expiry, TicketSubject, earliest

TDX_CLASS = Digest.from_name("mosaik.tee.tdx.ticket.v1")
MAX_TICKET_SIZE = 256 * 1024
"""Bound on a decompressed ticket: a quote plus full collateral is ~21 KB."""

_EXTRA = Digest.from_name("mosaik.tdx.ticket.extra")
_TAIL_CONTEXT = "mosaik-py 2025 tdx ticket report-data tail"
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_COLLATERAL_CACHE_SIZE = 16

UnixSeconds = Annotated[int, msgspec.Meta(ge=0, le=_I64_MAX)]
CollateralInput: TypeAlias = Collateral | str | bytes | Mapping[str, Any]
CollateralSource: TypeAlias = Callable[[bytes, int], CollateralInput]
"""``(quote bytes, now) -> collateral``: e.g. a PCCS fetch behind an on-disk cache."""


class TdxTicketData(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """The decoded ticket: the quote, the statement's times, optional collateral JSON."""

    quote: bytes
    quoted_at: UnixSeconds
    expiration: UnixSeconds
    collateral: bytes | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(TdxTicketData)


class QuoteProvider(Protocol):
    """Anything that quotes 64 bytes of report data: configfs-tsm, or the simulated platform."""

    def get_quote(self, report_data: bytes) -> bytes: ...


def _i64(value: int, name: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not _I64_MIN <= value <= _I64_MAX:
        raise ValueError(f"{name}: expected a 64-bit integer, got {value!r}")
    return value.to_bytes(8, "little", signed=True)


def _report_data(
    peer_id: PeerId, network_id: Digest, start_ms: int, quoted_at: int, expiration: int
) -> bytes:
    fields = (
        peer_id.bytes,
        network_id.bytes,
        _i64(start_ms, "start_ms"),
        _i64(quoted_at, "quoted_at"),
        _i64(expiration, "expiration"),
    )
    head = _EXTRA
    for field in fields:
        head = head.derive(field)
    tail = blake3.blake3(b"".join(fields), derive_key_context=_TAIL_CONTEXT).digest()
    return head.bytes + tail


def tdx_report_data(
    peer_id: PeerId, network_id: Digest, start_ms: int, quoted_at: int, expiration: int
) -> bytes:
    """The 64 bytes of REPORTDATA that bind a quote to this ticket statement."""
    try:
        return _report_data(peer_id, network_id, start_ms, quoted_at, expiration)
    except ValueError as exc:
        raise TicketConfigError(str(exc)) from None


def encode_tdx_ticket(data: TdxTicketData) -> Ticket:
    return Ticket(TDX_CLASS, zlib.compress(_encoder.encode(data), 9))


def decode_tdx_ticket(data: bytes) -> TdxTicketData:
    """Decode ticket data; anything malformed raises ``TicketRejected("format", ...)``."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, MAX_TICKET_SIZE + 1)
    except zlib.error as exc:
        raise TicketRejected("format", f"not zlib data: {exc}") from None
    if len(raw) > MAX_TICKET_SIZE:
        raise TicketRejected("format", f"decompresses beyond {MAX_TICKET_SIZE} bytes")
    if not inflater.eof or inflater.unused_data:
        raise TicketRejected("format", "truncated zlib stream or bytes after it")
    try:
        return _decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise TicketRejected("format", f"not a TDX ticket: {exc}") from None


def mint_tdx_ticket(
    provider: QuoteProvider,
    peer_id: PeerId,
    network_id: Digest,
    start_ms: int,
    quoted_at: int,
    expiration: int,
    collateral: CollateralInput | None = None,
) -> Ticket:
    """Quote the binding of (peer, network, start_ms, quoted_at, expiration) into a ticket.

    ``quoted_at`` and ``expiration`` are unix seconds; ``start_ms`` is the peer entry's start
    time. Attaching ``collateral`` lets validators without PCCS access verify the quote.
    """
    for name, value in (("quoted_at", quoted_at), ("expiration", expiration)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _I64_MAX:
            raise TicketConfigError(f"{name}: expected unix seconds as an int, got {value!r}")
    if expiration <= quoted_at:
        raise TicketConfigError(f"expiration {expiration} is not after quoted_at {quoted_at}")
    collateral_json: bytes | None = None
    if collateral is not None:
        try:
            collateral_json = as_collateral(collateral).to_json().encode()
        except AttestationError as exc:
            raise TicketConfigError(f"collateral: {exc}") from None
    report_data = tdx_report_data(peer_id, network_id, start_ms, quoted_at, expiration)
    try:
        quote = provider.get_quote(report_data)
    except AttestationError as exc:
        raise MintError(f"quote provider failed: {exc}") from exc
    return encode_tdx_ticket(TdxTicketData(quote, quoted_at, expiration, collateral_json))


def _seconds(value: float | None, option: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TicketConfigError(f"{option}: expected finite seconds, got {value!r}")
    if value < 0:
        raise TicketConfigError(f"{option}: must not be negative, got {value}")
    return float(value)


class TdxTicketValidator:
    """Validates TDX tickets: the quote (chain + ``policy``) and its binding to the peer.

    ``root_ca_der`` is the trust anchor (None: Intel's SGX root; the simulated platform's
    root for simulated quotes). ``collateral`` is the verifier's own source (a fixed
    ``Collateral`` or ``(quote, now) -> collateral``); without one, the ticket must carry
    its collateral. ``max_age``/``max_lifetime`` bound ``now - quoted_at`` and
    ``expiration - quoted_at``; ``not_before`` refuses quotes made before a cut-off
    (e.g. a TCB recovery); ``leeway`` absorbs clock skew on the time checks.
    """

    __slots__ = (
        "_collateral",
        "_collateral_cache",
        "_leeway",
        "_max_age",
        "_max_lifetime",
        "_not_before",
        "_policy",
        "_root_ca_der",
        "_signature",
    )

    def __init__(
        self,
        policy: Policy,
        *,
        root_ca_der: bytes | None = None,
        collateral: Collateral | CollateralSource | None = None,
        max_age: float | None = None,
        max_lifetime: float | None = None,
        not_before: float | None = None,
        leeway: float = 0.0,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TicketConfigError(f"policy: expected a Policy, got {type(policy).__name__}")
        if policy.report_data is not None:
            raise TicketConfigError(
                "policy.report_data: TDX tickets bind REPORTDATA themselves; leave it unset"
            )
        if root_ca_der is not None and not isinstance(root_ca_der, bytes):
            raise TicketConfigError("root_ca_der: expected DER bytes")
        self._policy = policy
        self._root_ca_der = root_ca_der
        self._collateral = collateral
        self._max_age = _seconds(max_age, "max_age")
        self._max_lifetime = _seconds(max_lifetime, "max_lifetime")
        self._not_before = _seconds(not_before, "not_before")
        leeway_seconds = _seconds(leeway, "leeway")
        assert leeway_seconds is not None
        self._leeway = leeway_seconds
        # Parsed collateral carried by tickets, by content hash: most peers of a cluster carry
        # the same collateral, and parsing it (CRLs, JSON) costs more than the lookup.
        self._collateral_cache: OrderedDict[bytes, Collateral] = OrderedDict()
        description = {
            "policy": policy.to_dict(),
            "root": "intel" if root_ca_der is None else blake3.blake3(root_ca_der).hexdigest(),
            "max_age": self._max_age,
            "max_lifetime": self._max_lifetime,
            "not_before": self._not_before,
            "leeway": self._leeway,
        }
        canonical = json.dumps(description, sort_keys=True, separators=(",", ":"))
        self._signature = TDX_CLASS.derive(canonical)

    @property
    def class_id(self) -> Digest:
        return TDX_CLASS

    def signature(self) -> Digest:
        return self._signature

    def __repr__(self) -> str:
        root = "intel" if self._root_ca_der is None else "custom root"
        return f"TdxTicketValidator({root}, signature={self._signature.short()})"

    def validate(self, data: bytes, peer: TicketSubject, now: float) -> Expiry:
        ticket = decode_tdx_ticket(data)
        self._check_times(ticket, now)

        try:
            quote = parse_quote(ticket.quote)
        except QuoteFormatError as exc:
            raise QuoteRejected("quote", f"format.{exc.field}", exc.message) from None
        try:
            expected = _report_data(
                peer.peer_id, peer.network_id, peer.start_ms, ticket.quoted_at, ticket.expiration
            )
        except ValueError as exc:
            raise TicketRejected("binding", f"peer entry: {exc}") from None
        if quote.td_report.report_data != expected:
            raise TicketRejected(
                "binding",
                "REPORTDATA does not commit to this peer, network, start time and ticket times",
            )

        collateral, carried = self._collateral_for(ticket, int(now))
        try:
            verify_quote(
                quote,
                collateral,
                int(now),
                self._policy,
                root_ca_der=self._root_ca_der,
                quote_time=ticket.quoted_at,
            )
        except PolicyViolation as exc:
            raise QuoteRejected("policy", exc.rule, exc.detail) from None
        except VerificationFailed as exc:
            raise QuoteRejected("quote", exc.rule, exc.detail) from None
        except AttestationError as exc:
            raise QuoteRejected("quote", type(exc).__name__, str(exc)) from None

        deadlines: list[Expiry] = [At(ticket.expiration + self._leeway)]
        if self._max_age is not None:
            deadlines.append(At(ticket.quoted_at + self._max_age + self._leeway))
        if carried:
            deadlines.append(At(collateral.not_after))
        return earliest(deadlines)

    def _check_times(self, ticket: TdxTicketData, now: float) -> None:
        leeway = self._leeway
        quoted_at, expiration = ticket.quoted_at, ticket.expiration
        if quoted_at > now + leeway:
            raise TicketRejected("quoted_at", f"quoted in the future ({quoted_at}, now {now})")
        if expiration <= quoted_at:
            raise TicketRejected("expiration", f"expires ({expiration}) before it was quoted")
        if now >= expiration + leeway:
            raise TicketRejected("expiration", f"expired at {expiration} (now {now})")
        if self._max_lifetime is not None and expiration - quoted_at > self._max_lifetime:
            raise TicketRejected(
                "max_lifetime",
                f"lifetime {expiration - quoted_at}s exceeds {self._max_lifetime}s",
            )
        if self._max_age is not None and now - quoted_at > self._max_age + leeway:
            raise TicketRejected("max_age", f"quoted {now - quoted_at}s ago, max {self._max_age}s")
        if self._not_before is not None and quoted_at < self._not_before:
            raise TicketRejected(
                "not_before", f"quoted at {quoted_at}, before the cut-off {self._not_before}"
            )

    def _collateral_for(self, ticket: TdxTicketData, now: int) -> tuple[Collateral, bool]:
        """The collateral to verify with, and whether it came from the ticket."""
        source = self._collateral
        try:
            if isinstance(source, Collateral):
                return source, False
            if source is not None:
                return as_collateral(source(ticket.quote, now)), False
            if ticket.collateral is None:
                raise TicketRejected(
                    "collateral", "the ticket carries none and no collateral source is configured"
                )
            return self._carried(ticket.collateral), True
        except AttestationError as exc:
            raise TicketRejected("collateral", str(exc)) from None

    def _carried(self, document: bytes) -> Collateral:
        key = blake3.blake3(document).digest()
        cache = self._collateral_cache
        collateral = cache.get(key)
        if collateral is None:
            collateral = as_collateral(document)
            cache[key] = collateral
            if len(cache) > _COLLATERAL_CACHE_SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return collateral
