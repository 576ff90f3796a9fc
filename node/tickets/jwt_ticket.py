"""JWT tickets: a compact JWT whose ``sub`` is the carrying peer's id.

Class id ``Digest.from_name("mosaik.tickets.jwt.v1")``; ticket data is the compact JWT
(ASCII bytes). Signatures are checked by pyjwt; the claims are checked here, in the seed's
order, each failure naming its check:

    format        the data is not a compact JWS with a JSON-object payload
    alg           the header's ``alg`` has a configured key ("none" never has one)
    signature     the signature verifies under that key
    iss           ``iss`` is one of the allowed issuers (when issuers are configured)
    sub           ``sub`` is the peer id in lower-case hex
    nbf           ``nbf``, if present, is not in the future
    exp           ``exp`` is present (unless non-expiring tokens are allowed) and not past
    max_lifetime  ``exp - iat`` (or ``exp - nbf`` without ``iat``) is within the bound
    max_age       ``now - iat`` is within the bound (and ``iat`` not in the future)
    aud           ``aud`` (a string or a list) names an allowed audience
    claims        each required custom claim is present with exactly the required JSON value

``leeway`` seconds of clock skew are granted to nbf, exp, max_age. The returned expiry is the
first moment a time check would fail: ``exp + leeway``, or ``iat + max_age + leeway`` if
sooner. ``now`` is passed in; nothing here reads a clock except the minter's default.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

import blake3
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey, Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from jwt.algorithms import get_default_algorithms

from node.primitives import Digest, PeerId, Ticket
from node.tickets.errors import MintError, TicketConfigError, TicketRejected
from node.tickets.validation import At, Expiry, Never, TicketSubject, earliest

JWT_CLASS = Digest.from_name("mosaik.tickets.jwt.v1")

# Minimum HMAC secret sizes: RFC 7518 section 3.2 asks for a key at least as long as the hash.
_HMAC_MIN_SECRET = {"HS256": 32, "HS384": 48, "HS512": 64}
_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
ALGORITHMS = (*_HMAC_MIN_SECRET, *_EC_CURVES, "EdDSA")

# Registered claims the builder sets through its own methods.
_REGISTERED = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat"})
# NumericDate bound: ~year 33658; keeps float arithmetic exact to the second.
_MAX_NUMERIC_DATE = 1e12

PublicKey: TypeAlias = ec.EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey
PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | Ed25519PrivateKey | Ed448PrivateKey
VerifyingKey: TypeAlias = bytes | str | PublicKey
"""An HMAC secret (bytes or str) for HS*, a public key object or its PEM for ES*/EdDSA."""
SigningKey: TypeAlias = bytes | str | PrivateKey
"""An HMAC secret (bytes or str) for HS*, a private key object or its PEM for ES*/EdDSA."""

_JWS = jwt.PyJWS()
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]+")
_JWT_ALGORITHMS = get_default_algorithms()


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _hmac_secret(alg: str, key: object, option: str) -> bytes:
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes):
        raise TicketConfigError(f"{option}: {alg} takes a secret (bytes), got {type(key).__name__}")
    try:
        _JWT_ALGORITHMS[alg].prepare_key(key)
    except jwt.InvalidKeyError as exc:
        # pyjwt refuses PEM/SSH keys as HMAC secrets: the classic alg-confusion setup.
        raise TicketConfigError(f"{option}: {alg} secret refused: {exc}") from None
    if len(key) < _HMAC_MIN_SECRET[alg]:
        raise TicketConfigError(
            f"{option}: {alg} secret must be at least {_HMAC_MIN_SECRET[alg]} bytes, got {len(key)}"
        )
    return key


def _check_asymmetric(alg: str, key: PublicKey | PrivateKey, option: str) -> None:
    if alg in _EC_CURVES:
        curve = _EC_CURVES[alg]
        if not isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
            raise TicketConfigError(f"{option}: {alg} takes an EC key, got {type(key).__name__}")
        if not isinstance(key.curve, curve):
            raise TicketConfigError(
                f"{option}: {alg} takes a {curve.name} key, got {key.curve.name}"
            )
    elif not isinstance(
        key, Ed25519PublicKey | Ed448PublicKey | Ed25519PrivateKey | Ed448PrivateKey
    ):
        raise TicketConfigError(
            f"{option}: EdDSA takes an Ed25519 or Ed448 key, got {type(key).__name__}"
        )


def _public_key(alg: str, key: VerifyingKey, option: str) -> PublicKey:
    if isinstance(key, str | bytes):
        pem = key.encode() if isinstance(key, str) else key
        try:
            loaded = load_pem_public_key(pem)
        except ValueError as exc:
            raise TicketConfigError(f"{option}: not a PEM public key: {exc}") from None
        if not isinstance(loaded, PublicKey):
            raise TicketConfigError(f"{option}: unsupported key type {type(loaded).__name__}")
        key = loaded
    if not isinstance(key, PublicKey):
        # A private key here is a configuration slip that would leak into logs and configs.
        raise TicketConfigError(f"{option}: {alg} takes a public key, got {type(key).__name__}")
    _check_asymmetric(alg, key, option)
    return key


def _private_key(alg: str, key: SigningKey, option: str) -> PrivateKey:
    if isinstance(key, str | bytes):
        pem = key.encode() if isinstance(key, str) else key
        try:
            loaded = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise TicketConfigError(
                f"{option}: not an unencrypted PEM private key: {exc}"
            ) from None
        if not isinstance(loaded, PrivateKey):
            raise TicketConfigError(f"{option}: unsupported key type {type(loaded).__name__}")
        key = loaded
    if not isinstance(key, PrivateKey):
        raise TicketConfigError(f"{option}: {alg} takes a private key, got {type(key).__name__}")
    _check_asymmetric(alg, key, option)
    return key


def _check_alg(alg: object, option: str) -> str:
    if alg not in ALGORITHMS:
        raise TicketConfigError(
            f"{option}: unsupported JWT algorithm {alg!r} (supported: {', '.join(ALGORITHMS)})"
        )
    assert isinstance(alg, str)
    return alg


@dataclass(frozen=True, slots=True)
class _Key:
    verifier: bytes | PublicKey
    fingerprint: str


def _verifying_key(alg: str, key: VerifyingKey) -> _Key:
    option = f"keys[{alg}]"
    if alg in _HMAC_MIN_SECRET:
        secret = _hmac_secret(alg, key, option)
        # The fingerprint is public (it feeds group ids). It reveals nothing a token minted
        # with the same secret does not: both allow an offline guess of a weak secret.
        tag = blake3.blake3(secret, derive_key_context="mosaik.tickets.jwt.v1 hmac secret")
        return _Key(secret, tag.hexdigest())
    public = _public_key(alg, key, option)
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return _Key(public, blake3.blake3(der).hexdigest())


def _seconds(value: float | None, option: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TicketConfigError(f"{option}: expected seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise TicketConfigError(f"{option}: expected finite non-negative seconds, got {value}")
    return float(value)


class JwtTicketValidator:
    """Validates JWT tickets; every option takes part in ``signature()``.

    ``keys`` maps algorithm names (HS256/384/512, ES256/384/512, EdDSA) to verifying keys; a
    token is checked only with the key of the algorithm its header names. Empty ``issuers`` or
    ``audience`` mean no requirement. ``claims`` are exact JSON values required in the token.
    """

    __slots__ = (
        "_allow_non_expiring",
        "_audience",
        "_claims",
        "_issuers",
        "_keys",
        "_leeway",
        "_max_age",
        "_max_lifetime",
        "_signature",
    )

    def __init__(
        self,
        keys: Mapping[str, VerifyingKey],
        *,
        issuers: Iterable[str] = (),
        audience: Iterable[str] = (),
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
        leeway: float = 0.0,
    ) -> None:
        if not keys:
            raise TicketConfigError("keys: at least one algorithm key is required")
        self._keys = {
            _check_alg(alg, f"keys[{alg!r}]"): _verifying_key(alg, key) for alg, key in keys.items()
        }
        self._issuers = frozenset(_strings(issuers, "issuers"))
        self._audience = frozenset(_strings(audience, "audience"))
        self._allow_non_expiring = bool(allow_non_expiring)
        self._max_lifetime = _seconds(max_lifetime, "max_lifetime")
        self._max_age = _seconds(max_age, "max_age")
        leeway_seconds = _seconds(leeway, "leeway")
        assert leeway_seconds is not None
        self._leeway = leeway_seconds
        self._claims: dict[str, str] = {}
        for name, value in (claims or {}).items():
            try:
                self._claims[str(name)] = _canonical_json(value)
            except (TypeError, ValueError) as exc:
                raise TicketConfigError(f"claims[{name!r}]: not a JSON value: {exc}") from None
        self._signature = JWT_CLASS.derive(_canonical_json(self._describe()))

    @property
    def class_id(self) -> Digest:
        return JWT_CLASS

    def signature(self) -> Digest:
        return self._signature

    def _describe(self) -> dict[str, Any]:
        return {
            "keys": {alg: key.fingerprint for alg, key in self._keys.items()},
            "issuers": sorted(self._issuers),
            "audience": sorted(self._audience),
            "allow_non_expiring": self._allow_non_expiring,
            "max_lifetime": self._max_lifetime,
            "max_age": self._max_age,
            "claims": self._claims,
            "leeway": self._leeway,
        }

    def __repr__(self) -> str:
        return f"JwtTicketValidator(algs={sorted(self._keys)}, signature={self._signature.short()})"

    def validate(self, data: bytes, peer: TicketSubject, now: float) -> Expiry:
        claims = self._verified_claims(data)
        leeway = self._leeway

        if self._issuers and claims.get("iss") not in self._issuers:
            raise TicketRejected("iss", f"issuer {claims.get('iss')!r} is not allowed")

        subject = peer.peer_id.hex()
        if claims.get("sub") != subject:
            raise TicketRejected("sub", f"subject {claims.get('sub')!r} is not the peer id")

        nbf = _numeric(claims, "nbf")
        if nbf is not None and nbf > now + leeway:
            raise TicketRejected("nbf", f"not valid before {nbf} (now {now})")

        exp = _numeric(claims, "exp")
        if exp is None:
            if not self._allow_non_expiring:
                raise TicketRejected("exp", "token has no exp and non-expiring tokens are refused")
        elif now >= exp + leeway:
            raise TicketRejected("exp", f"expired at {exp} (now {now})")

        iat: float | None = None
        if self._max_lifetime is not None:
            iat = _numeric(claims, "iat", check="max_lifetime")
            start = iat if iat is not None else nbf
            if exp is None or start is None:
                raise TicketRejected("max_lifetime", "token needs exp and iat (or nbf)")
            if exp - start > self._max_lifetime:
                raise TicketRejected(
                    "max_lifetime", f"lifetime {exp - start}s exceeds {self._max_lifetime}s"
                )

        if self._max_age is not None:
            iat = _numeric(claims, "iat", check="max_age")
            if iat is None:
                raise TicketRejected("max_age", "token has no iat")
            if iat > now + leeway:
                raise TicketRejected("max_age", f"issued in the future ({iat}, now {now})")
            if now - iat > self._max_age + leeway:
                raise TicketRejected("max_age", f"issued {now - iat}s ago, max {self._max_age}s")

        if self._audience and not self._audience_allowed(claims.get("aud")):
            raise TicketRejected("aud", f"audience {claims.get('aud')!r} is not allowed")

        for name, expected in self._claims.items():
            if name not in claims or _canonical_json(claims[name]) != expected:
                raise TicketRejected("claims", f"claim {name!r} is not {expected}")

        deadlines: list[Expiry] = []
        if exp is not None:
            deadlines.append(At(exp + leeway))
        if self._max_age is not None and iat is not None:
            deadlines.append(At(iat + self._max_age + leeway))
        return earliest(deadlines) if deadlines else Never()

    def _verified_claims(self, data: bytes) -> dict[str, Any]:
        alg = _header_alg(data)
        key = self._keys.get(alg) if isinstance(alg, str) else None
        if key is None or not isinstance(alg, str):
            raise TicketRejected("alg", f"no key configured for alg {alg!r}")
        try:
            decoded = _JWS.decode_complete(data, key.verifier, algorithms=[alg])
        except jwt.InvalidSignatureError:
            raise TicketRejected("signature", f"{alg} signature does not verify") from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TicketRejected("format", f"not a valid JWS: {exc}") from None
        try:
            claims = json.loads(decoded["payload"], parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise TicketRejected("format", f"payload is not JSON: {exc}") from None
        if not isinstance(claims, dict):
            raise TicketRejected("format", "payload is not a JSON object")
        return claims

    def _audience_allowed(self, aud: object) -> bool:
        if isinstance(aud, str):
            return aud in self._audience
        if isinstance(aud, list):
            return any(isinstance(a, str) and a in self._audience for a in aud)
        return False


def _header_alg(data: bytes) -> object:
    """The ``alg`` of a compact JWS header, read without verifying anything yet.

    Only the header segment is decoded here; pyjwt parses the whole token strictly when it
    verifies the signature right after.
    """
    segment = data.split(b".", 1)[0]
    if not _BASE64URL.fullmatch(segment):
        raise TicketRejected("format", "not a compact JWT: header is not base64url")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (ValueError, RecursionError) as exc:
        raise TicketRejected("format", f"not a compact JWT: header: {exc}") from None
    if not isinstance(header, dict):
        raise TicketRejected("format", "not a compact JWT: header is not a JSON object")
    return header.get("alg")


def _strings(values: Iterable[str], option: str) -> list[str]:
    if isinstance(values, str):
        raise TicketConfigError(f"{option}: expected a collection of strings, got one string")
    result = list(values)
    for value in result:
        if not isinstance(value, str):
            raise TicketConfigError(f"{option}: expected strings, got {type(value).__name__}")
    return result


def _numeric(claims: Mapping[str, Any], name: str, *, check: str | None = None) -> float | None:
    """A NumericDate claim, or None when absent; anything else is rejected under ``check``."""
    if name not in claims:
        return None
    value = claims[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not -_MAX_NUMERIC_DATE < value < _MAX_NUMERIC_DATE
    ):
        raise TicketRejected(check or name, f"{name} is not a NumericDate: {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class _Claims:
    issuer: str | None = None
    audience: tuple[str, ...] = ()
    lifetime: float | None = None
    expires_at: int | None = None
    not_before: int | None = None
    custom: tuple[tuple[str, Any], ...] = ()


class JwtTicketBuilder:
    """Mints JWT tickets for peers; each method returns a new builder.

    ``JwtTicketBuilder(key, "ES256").issuer("ops").expires_in(3600).mint(peer_id)``.
    Tokens always carry ``sub`` (the peer id) and ``iat``; ``exp`` only if set.
    """

    __slots__ = ("_alg", "_claims", "_key")

    def __init__(self, key: SigningKey, alg: str) -> None:
        self._alg = _check_alg(alg, "alg")
        self._key: bytes | PrivateKey
        if alg in _HMAC_MIN_SECRET:
            self._key = _hmac_secret(alg, key, "key")
        else:
            self._key = _private_key(alg, key, "key")
        self._claims = _Claims()

    def _with(self, claims: _Claims) -> JwtTicketBuilder:
        builder = object.__new__(JwtTicketBuilder)
        builder._alg = self._alg
        builder._key = self._key
        builder._claims = claims
        return builder

    def issuer(self, issuer: str) -> JwtTicketBuilder:
        return self._with(replace(self._claims, issuer=issuer))

    def audience(self, *audience: str) -> JwtTicketBuilder:
        return self._with(replace(self._claims, audience=audience))

    def expires_in(self, seconds: float) -> JwtTicketBuilder:
        """``exp = iat + seconds`` at minting time."""
        lifetime = _seconds(seconds, "expires_in")
        return self._with(replace(self._claims, lifetime=lifetime, expires_at=None))

    def expires_at(self, timestamp: int) -> JwtTicketBuilder:
        return self._with(replace(self._claims, expires_at=int(timestamp), lifetime=None))

    def not_before(self, timestamp: int) -> JwtTicketBuilder:
        return self._with(replace(self._claims, not_before=int(timestamp)))

    def claim(self, name: str, value: Any) -> JwtTicketBuilder:
        if name in _REGISTERED:
            raise TicketConfigError(f"claim {name!r}: set registered claims with their methods")
        try:
            _canonical_json(value)
        except (TypeError, ValueError) as exc:
            raise TicketConfigError(f"claim {name!r}: not a JSON value: {exc}") from None
        return self._with(replace(self._claims, custom=(*self._claims.custom, (name, value))))

    def mint(self, peer_id: PeerId, *, now: float | None = None) -> Ticket:
        """A ticket for ``peer_id``; ``now`` (unix seconds) defaults to the system clock."""
        issued = int(time.time() if now is None else now)
        spec = self._claims
        payload: dict[str, Any] = dict(spec.custom)
        payload["sub"] = peer_id.hex()
        payload["iat"] = issued
        if spec.issuer is not None:
            payload["iss"] = spec.issuer
        if spec.audience:
            payload["aud"] = spec.audience[0] if len(spec.audience) == 1 else list(spec.audience)
        if spec.not_before is not None:
            payload["nbf"] = spec.not_before
        if spec.lifetime is not None:
            payload["exp"] = issued + math.ceil(spec.lifetime)
        elif spec.expires_at is not None:
            payload["exp"] = spec.expires_at
        try:
            token = jwt.encode(payload, self._key, algorithm=self._alg)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise MintError(f"could not sign the JWT with {self._alg}: {exc}") from None
        return Ticket(JWT_CLASS, token.encode("ascii"))
