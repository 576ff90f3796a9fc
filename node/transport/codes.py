"""Application close codes, as in the seed (mosaik 0.3.18)."""

from __future__ import annotations

SUCCESS = 200
GRACEFUL_SHUTDOWN = 204
INVALID_ALPN = 100
DIFFERENT_NETWORK = 101
CANCELLED = 102
UNEXPECTED_CLOSE = 103
PROTOCOL_VIOLATION = 400
UNKNOWN_PEER = 401
# Authentication failures are ours: the seed relies on iroh's TLS for them.
AUTHENTICATION_FAILED = 402

STREAM_NOT_FOUND = 10404
STREAM_NOT_ALLOWED = 10403
STREAM_NO_CAPACITY = 10509
STREAM_TOO_SLOW = 10413

GROUP_INVALID_HANDSHAKE = 30400
GROUP_NOT_ALLOWED = 30403
GROUP_NOT_FOUND = 30404
GROUP_INVALID_PROOF = 30405
GROUP_TIMEOUT = 30408
GROUP_ALREADY_BONDED = 30429

_NAMES = {value: name for name, value in globals().items() if isinstance(value, int)}


def describe(code: int) -> str:
    name = _NAMES.get(code)
    return f"{name} ({code})" if name else f"code {code}"
