"""Reading MRTD and RTMR0-3 out of a TDX quote (v4, or v5 with a TD 1.0/1.5 body).

Only the register fields are read; verifying the quote is ``attestation``'s job. The TD report
body starts at 48 (v4) or 54 (v5, after u16 body type + u32 body size); within it MRTD is at
136 and RTMR0..3 at 328 + 48 * i.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from attestation.measure._files import read_input
from attestation.measure.errors import QuoteError
from attestation.measure.events import DIGEST_SIZE, RTMR_COUNT

_TDX_TEE_TYPE: Final = 0x81
_MRTD: Final = 136
_RTMR0: Final = 328
_TD_REPORT_SIZE: Final = 584


@dataclass(frozen=True, slots=True)
class QuoteRegisters:
    mrtd: bytes
    rtmrs: tuple[bytes, ...]

    def as_expected(self) -> dict[int, bytes]:
        return dict(enumerate(self.rtmrs))


def quote_registers(quote: bytes, source: str = "quote") -> QuoteRegisters:
    if len(quote) < 48:
        raise QuoteError(source, f"truncated: {len(quote)} bytes is shorter than a quote header")
    version, _key_type, tee_type = struct.unpack_from("<HHI", quote, 0)
    if tee_type != _TDX_TEE_TYPE:
        raise QuoteError(source, f"not a TDX quote (TEE type {tee_type:#x})")
    if version == 4:
        body = 48
    elif version == 5:
        if len(quote) < 54:
            raise QuoteError(source, "truncated: v5 quote has no body descriptor")
        (body_type,) = struct.unpack_from("<H", quote, 48)
        if body_type not in (2, 3):
            raise QuoteError(source, f"v5 quote body type {body_type} is not a TD report")
        body = 54
    else:
        raise QuoteError(source, f"unsupported quote version {version}")
    if len(quote) < body + _TD_REPORT_SIZE:
        raise QuoteError(source, f"truncated: the TD report needs {body + _TD_REPORT_SIZE} bytes")
    rtmrs = tuple(
        quote[body + _RTMR0 + i * DIGEST_SIZE : body + _RTMR0 + (i + 1) * DIGEST_SIZE]
        for i in range(RTMR_COUNT)
    )
    return QuoteRegisters(quote[body + _MRTD : body + _MRTD + DIGEST_SIZE], rtmrs)


def load_quote(path: str | Path) -> bytes:
    """A quote from a binary file, a hex text file, or JSON with a ``quote`` hex string."""
    source = str(path)
    data = read_input(path, "quote")
    text = data.strip()
    if text[:1] == b"{":
        try:
            document = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise QuoteError(source, f"not JSON: {exc}") from None
        value = document.get("quote") if isinstance(document, dict) else None
        if not isinstance(value, str):
            raise QuoteError(source, "JSON has no 'quote' hex string")
        text = value.encode()
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return data
