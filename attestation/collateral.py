"""DCAP collateral: load it from a file, fetch it from a PCCS/PCS, cache it on disk.

Collateral (Intel PCS v4: TCB info, QE identity, PCK and root CA CRLs, their issuer chains) is
what dcap-qvl checks a quote against. Its file form is dcap-qvl's ``QuoteCollateralV3`` JSON.
Every piece has a validity window; ``Collateral.not_before``/``not_after`` is their intersection,
so freshness can be judged (and a cache entry expired) without running the verifier.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dcap_qvl
from cryptography import x509

from attestation.errors import CollateralError, QuoteFormatError
from attestation.quote import Quote, parse_quote


@dataclass(frozen=True, slots=True)
class Collateral:
    """Verified-against material for quotes of one platform family (FMSPC) and PCK CA."""

    dcap: dcap_qvl.QuoteCollateralV3 = field(compare=False, repr=False)
    json_text: str = field(repr=False)
    not_before: int
    not_after: int
    fmspc: str

    @classmethod
    def from_json(cls, document: str | bytes | Mapping[str, Any]) -> Collateral:
        """Collateral from dcap-qvl ``QuoteCollateralV3`` JSON (text or decoded object)."""
        if isinstance(document, Mapping):
            text = json.dumps(dict(document))
        elif isinstance(document, bytes):
            try:
                text = document.decode("utf-8")
            except UnicodeDecodeError:
                raise CollateralError("collateral is not UTF-8 JSON") from None
        else:
            text = document
        try:
            dcap = dcap_qvl.QuoteCollateralV3.from_json(text)
        except (ValueError, TypeError) as exc:
            raise CollateralError(f"not QuoteCollateralV3 JSON: {exc}") from None
        return cls.from_dcap(dcap)

    @classmethod
    def from_dcap(cls, dcap: dcap_qvl.QuoteCollateralV3) -> Collateral:
        """Wrap a dcap-qvl collateral object, computing its validity window."""
        not_before, not_after, fmspc = _window(dcap)
        return cls(
            dcap=dcap,
            json_text=dcap.to_json(),
            not_before=not_before,
            not_after=not_after,
            fmspc=fmspc,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Collateral:
        """Load a collateral JSON file; ``CollateralError`` names the file."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CollateralError(f"cannot read collateral file {path}: {exc}") from None
        try:
            return cls.from_json(data)
        except CollateralError as exc:
            raise CollateralError(f"{path}: {exc}") from None

    def to_json(self) -> str:
        return self.json_text

    def valid_at(self, now: int) -> bool:
        """Whether every piece of the collateral is within its validity window at ``now``."""
        return self.not_before <= now < self.not_after


def as_collateral(
    value: Collateral | dcap_qvl.QuoteCollateralV3 | str | bytes | Mapping[str, Any],
) -> Collateral:
    """Accept our ``Collateral``, a dcap-qvl object, or its JSON (as simulators emit it)."""
    if isinstance(value, Collateral):
        return value
    if isinstance(value, dcap_qvl.QuoteCollateralV3):
        return Collateral.from_dcap(value)
    if isinstance(value, str | bytes | Mapping):
        return Collateral.from_json(value)
    raise CollateralError(f"expected collateral, got {type(value).__name__}")


def _window(dcap: dcap_qvl.QuoteCollateralV3) -> tuple[int, int, str]:
    starts: list[int] = []
    ends: list[int] = []
    fmspc = ""
    for name in ("tcb_info", "qe_identity"):
        body = _json_field(getattr(dcap, name), name)
        starts.append(_rfc3339(body.get("issueDate"), f"{name}.issueDate"))
        ends.append(_rfc3339(body.get("nextUpdate"), f"{name}.nextUpdate"))
        if name == "tcb_info":
            fmspc = str(body.get("fmspc", "")).upper()
    for name in ("root_ca_crl", "pck_crl"):
        try:
            crl = x509.load_der_x509_crl(getattr(dcap, name))
        except ValueError as exc:
            raise CollateralError(f"{name} is not a DER CRL: {exc}") from None
        starts.append(int(crl.last_update_utc.timestamp()))
        if crl.next_update_utc is None:
            raise CollateralError(f"{name} has no nextUpdate")
        ends.append(int(crl.next_update_utc.timestamp()))
    for name in ("pck_crl_issuer_chain", "tcb_info_issuer_chain", "qe_identity_issuer_chain"):
        try:
            certs = x509.load_pem_x509_certificates(getattr(dcap, name).encode())
        except ValueError as exc:
            raise CollateralError(f"{name} is not a PEM certificate chain: {exc}") from None
        for cert in certs:
            starts.append(int(cert.not_valid_before_utc.timestamp()))
            ends.append(int(cert.not_valid_after_utc.timestamp()))
    return max(starts), min(ends), fmspc


def _json_field(text: str, name: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise CollateralError(f"{name} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CollateralError(f"{name} is not a JSON object")
    return body


def _rfc3339(value: object, name: str) -> int:
    if not isinstance(value, str):
        raise CollateralError(f"{name} is missing")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CollateralError(f"{name} {value!r} is not an RFC 3339 time") from None
    if stamp.tzinfo is None:
        raise CollateralError(f"{name} {value!r} has no time zone")
    return int(stamp.timestamp())


# -- fetching ------------------------------------------------------------------------------------

Fetch = Callable[[str, bytes], Awaitable[Collateral | dcap_qvl.QuoteCollateralV3 | str]]


async def fetch_collateral(pccs_url: str, quote: bytes) -> Collateral:
    """Fetch a quote's collateral from a PCCS or Intel PCS URL (dcap-qvl's HTTP client)."""
    try:
        dcap = await dcap_qvl.get_collateral(pccs_url, bytes(quote))
    except (ValueError, RuntimeError, TypeError) as exc:
        raise CollateralError(f"fetching collateral from {pccs_url} failed: {exc}") from None
    return Collateral.from_dcap(dcap)


def cache_key(quote: bytes | Quote) -> str:
    """``<FMSPC>-<ca>`` of a quote's PCK certificate: collateral is shared per (FMSPC, CA)."""
    raw = quote.raw if isinstance(quote, Quote) else parse_quote(quote).raw
    try:
        parsed = dcap_qvl.parse_quote(raw)
        return f"{parsed.fmspc().upper()}-{parsed.ca()}"
    except (ValueError, TypeError) as exc:
        raise QuoteFormatError(
            "certification_data", f"no FMSPC/CA in the PCK certificate: {exc}"
        ) from None


class CollateralCache:
    """Collateral per (PCCS URL, FMSPC, CA) on disk, refetched once past its ``nextUpdate``.

    ``fetch`` is injectable (tests pass a fake; the default is ``fetch_collateral``). A failed
    fetch falls back to a cached entry that is still valid; otherwise it raises
    ``CollateralError``. ``refresh_margin`` refetches that many seconds before expiry.
    """

    def __init__(
        self,
        directory: str | Path,
        pccs_url: str,
        *,
        fetch: Fetch = fetch_collateral,
        refresh_margin: int = 0,
    ) -> None:
        self.directory = Path(directory)
        self.pccs_url = pccs_url
        self._fetch = fetch
        self._refresh_margin = refresh_margin
        self._url_tag = hashlib.sha256(pccs_url.encode()).hexdigest()[:12]
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    def path_for(self, quote: bytes | Quote) -> Path:
        return self.directory / f"{self._url_tag}-{cache_key(quote)}.json"

    def cached(self, quote: bytes | Quote, now: int) -> Collateral | None:
        """The cached collateral for ``quote`` if present and fresh at ``now``, else None."""
        entry = self._load(self.path_for(quote))
        if entry is None or not entry.valid_at(now + self._refresh_margin):
            return None
        return entry

    async def get(self, quote: bytes | Quote, now: int) -> Collateral:
        """Collateral for ``quote`` valid at ``now``: from disk, or fetched and stored."""
        path = self.path_for(quote)
        lock = self._locks.setdefault(path.name, asyncio.Lock())
        async with lock:
            entry = self._load(path)
            if entry is not None and entry.valid_at(now + self._refresh_margin):
                return entry
            raw = quote.raw if isinstance(quote, Quote) else bytes(quote)
            try:
                fetched = as_collateral(await self._fetch(self.pccs_url, raw))
            except CollateralError:
                if entry is not None and entry.valid_at(now):
                    return entry
                raise
            self.fetches += 1
            self._store(path, fetched)
            return fetched

    def _load(self, path: Path) -> Collateral | None:
        try:
            return Collateral.from_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, CollateralError):
            return None  # an unreadable or corrupt entry is refetched and overwritten

    def _store(self, path: Path, collateral: Collateral) -> None:
        tmp: str | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(collateral.to_json())
            os.replace(tmp, path)  # readers see the old entry or the new one, never half of one
            tmp = None
        except OSError as exc:
            raise CollateralError(f"cannot write collateral cache {path}: {exc}") from None
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
