"""JWT tickets: every check of the seed's list, in order, each failure naming its check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from node.primitives import Digest
from node.tickets import (
    JWT_CLASS,
    At,
    JwtTicketBuilder,
    JwtTicketValidator,
    Never,
    TicketConfigError,
    TicketRejected,
    TicketsRejected,
    validate_all,
)
from tests.tickets.subjects import subject

SECRET = b"s" * 32
NOW = 1_750_000_000
PEER = subject(1)
OTHER = subject(2)


def token(claims: dict[str, Any], key: Any = SECRET, alg: str = "HS256", **headers: Any) -> bytes:
    return jwt.encode(claims, key, algorithm=alg, headers=headers or None).encode()


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": PEER.peer_id.hex(), "iat": NOW - 10, "exp": NOW + 100}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def rejected(validator: JwtTicketValidator, data: bytes, now: float = NOW, peer: Any = PEER) -> str:
    with pytest.raises(TicketRejected) as info:
        validator.validate(data, peer, now)
    return info.value.check


def hs(**options: Any) -> JwtTicketValidator:
    return JwtTicketValidator({"HS256": SECRET}, **options)


def test_valid_token_expires_at_exp() -> None:
    assert hs().validate(token(claims()), PEER, NOW) == At(NOW + 100)


def test_format_garbage() -> None:
    assert rejected(hs(), b"not a jwt") == "format"
    assert rejected(hs(), b"\xff\x00.a.b") == "format"
    header, _, _ = token(claims()).decode().split(".")
    payload = base64.urlsafe_b64encode(b'["a", "list"]').rstrip(b"=").decode()
    signing_input = f"{header}.{payload}".encode()
    mac = hmac.new(SECRET, signing_input, hashlib.sha256).digest()
    list_payload = signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")
    assert rejected(hs(), list_payload) == "format"


def unsigned(claims_: dict[str, Any], alg: str = "none") -> bytes:
    def part(obj: Any) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=")

    return part({"alg": alg, "typ": "JWT"}) + b"." + part(claims_) + b"."


def test_alg_none_is_refused() -> None:
    assert rejected(hs(), unsigned(claims())) == "alg"
    assert rejected(hs(), unsigned(claims(), alg="None")) == "alg"
    assert rejected(hs(), unsigned(claims(), alg="HS256")) == "signature"


def test_alg_without_a_configured_key_is_refused() -> None:
    other_secret = b"o" * 48
    assert rejected(hs(), token(claims(), other_secret, "HS384")) == "alg"


def test_alg_confusion_public_key_as_hmac_secret() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    validator = JwtTicketValidator({"ES256": private.public_key()})
    # The attacker signs with HS256 using the (public) PEM as the HMAC secret.
    forged = unsigned(claims(), alg="HS256").rstrip(b".")
    mac = hmac.new(pem, forged, hashlib.sha256).digest()
    forged += b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")
    assert rejected(validator, forged) == "alg"
    # Nor can an operator configure that key as an HMAC secret by mistake.
    with pytest.raises(TicketConfigError, match="HS256"):
        JwtTicketValidator({"HS256": pem})


def test_wrong_key_fails_signature() -> None:
    assert rejected(hs(), token(claims(), b"w" * 32)) == "signature"


def test_tampered_payload_fails_signature() -> None:
    header, _, signature = token(claims()).split(b".")
    _, payload, _ = token(claims(sub=OTHER.peer_id.hex())).split(b".")
    assert rejected(hs(), b".".join([header, payload, signature])) == "signature"


def test_issuer() -> None:
    validator = hs(issuers=["ops", "ci"])
    assert validator.validate(token(claims(iss="ci")), PEER, NOW) == At(NOW + 100)
    assert rejected(validator, token(claims(iss="eve"))) == "iss"
    assert rejected(validator, token(claims())) == "iss"


def test_subject_must_be_the_peer() -> None:
    assert rejected(hs(), token(claims()), peer=OTHER) == "sub"
    assert rejected(hs(), token(claims(sub=None))) == "sub"
    assert rejected(hs(), token(claims(sub=PEER.peer_id.hex().upper()))) == "sub"


def test_not_before() -> None:
    data = token(claims(nbf=NOW + 5))
    assert rejected(hs(), data) == "nbf"
    assert hs().validate(data, PEER, NOW + 5) == At(NOW + 100)
    assert hs(leeway=5).validate(data, PEER, NOW) == At(NOW + 105)
    assert rejected(hs(), token(claims(nbf="soon"))) == "nbf"


def test_expired() -> None:
    data = token(claims())
    assert rejected(hs(), data, now=NOW + 100) == "exp"
    assert hs(leeway=10).validate(data, PEER, NOW + 100) == At(NOW + 110)
    assert rejected(hs(), token(claims(exp="never"))) == "exp"
    assert rejected(hs(), token(claims(exp=1e300))) == "exp"


def test_exp_required_unless_non_expiring_allowed() -> None:
    data = token(claims(exp=None))
    assert rejected(hs(), data) == "exp"
    assert hs(allow_non_expiring=True).validate(data, PEER, NOW) == Never()


def test_max_lifetime() -> None:
    validator = hs(max_lifetime=60)
    assert rejected(validator, token(claims())) == "max_lifetime"  # 110 s from iat
    assert validator.validate(token(claims(exp=NOW + 50)), PEER, NOW) == At(NOW + 50)
    # Without iat the lifetime counts from nbf; with neither it cannot be bounded.
    assert validator.validate(token(claims(iat=None, nbf=NOW, exp=NOW + 60)), PEER, NOW) == At(
        NOW + 60
    )
    assert rejected(validator, token(claims(iat=None, nbf=NOW - 1, exp=NOW + 60))) == (
        "max_lifetime"
    )
    assert rejected(validator, token(claims(iat=None))) == "max_lifetime"
    assert rejected(hs(max_lifetime=60, allow_non_expiring=True), token(claims(exp=None))) == (
        "max_lifetime"
    )


def test_max_age_bounds_the_expiry() -> None:
    validator = hs(max_age=30)
    assert validator.validate(token(claims()), PEER, NOW) == At(NOW + 20)  # iat + 30 < exp
    assert rejected(validator, token(claims()), now=NOW + 21) == "max_age"
    assert rejected(validator, token(claims(iat=None))) == "max_age"
    assert rejected(validator, token(claims(iat=NOW + 60))) == "max_age"


def test_audience() -> None:
    validator = hs(audience=["matchers"])
    assert validator.validate(token(claims(aud="matchers")), PEER, NOW) == At(NOW + 100)
    assert validator.validate(token(claims(aud=["x", "matchers"])), PEER, NOW) == At(NOW + 100)
    assert rejected(validator, token(claims(aud="traders"))) == "aud"
    assert rejected(validator, token(claims())) == "aud"


def test_exact_custom_claims() -> None:
    validator = hs(claims={"role": "matcher", "level": 3})
    assert validator.validate(token(claims(role="matcher", level=3)), PEER, NOW) == At(NOW + 100)
    assert rejected(validator, token(claims(role="matcher", level=3.0))) == "claims"
    assert rejected(validator, token(claims(role="matcher", level=True))) == "claims"
    assert rejected(validator, token(claims(role="trader", level=3))) == "claims"
    assert rejected(validator, token(claims(role="matcher"))) == "claims"


def test_checks_run_in_the_seeds_order() -> None:
    validator = hs(issuers=["ops"], audience=["a"], max_lifetime=1, max_age=1, claims={"k": 1})
    everything_wrong = claims(iss="eve", sub="x", nbf=NOW + 9, exp=NOW - 9, iat=NOW - 99)
    assert rejected(validator, token(everything_wrong)) == "iss"
    assert rejected(validator, token({**everything_wrong, "iss": "ops"})) == "sub"


def test_es256_es384_es512_and_eddsa() -> None:
    keys = {
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "ES384": ec.generate_private_key(ec.SECP384R1()),
        "ES512": ec.generate_private_key(ec.SECP521R1()),
        "EdDSA": Ed25519PrivateKey.generate(),
    }
    validator = JwtTicketValidator({alg: key.public_key() for alg, key in keys.items()})
    for alg, key in keys.items():
        ticket = JwtTicketBuilder(key, alg).expires_in(60).mint(PEER.peer_id, now=NOW)
        assert validator.validate(ticket.data, PEER, NOW) == At(NOW + 60), alg
        # The same token signed by another key of that algorithm fails.
        other = (
            Ed25519PrivateKey.generate()
            if isinstance(key, Ed25519PrivateKey)
            else ec.generate_private_key(key.curve)
        )
        forged = JwtTicketBuilder(other, alg).expires_in(60).mint(PEER.peer_id, now=NOW)
        assert rejected(validator, forged.data) == "signature", alg


def test_pem_keys_are_accepted() -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    validator = JwtTicketValidator({"EdDSA": pem.decode()}, allow_non_expiring=True)
    ticket = JwtTicketBuilder(private, "EdDSA").mint(PEER.peer_id, now=NOW)
    assert validator.validate(ticket.data, PEER, NOW) == Never()


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ({}, "at least one"),
        ({"none": b""}, "unsupported"),
        ({"RS256": b"x"}, "unsupported"),
        ({"HS256": b"short"}, "at least 32 bytes"),
        ({"ES256": ec.generate_private_key(ec.SECP384R1()).public_key()}, "secp256r1"),
        ({"ES256": ec.generate_private_key(ec.SECP256R1())}, "public key"),
        ({"EdDSA": ec.generate_private_key(ec.SECP256R1()).public_key()}, "Ed25519"),
        ({"EdDSA": b"not pem"}, "PEM"),
    ],
)
def test_bad_keys_are_config_errors(keys: dict[str, Any], match: str) -> None:
    with pytest.raises(TicketConfigError, match=match):
        JwtTicketValidator(keys)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(TicketConfigError, match="max_age"):
        hs(max_age=-1)
    with pytest.raises(TicketConfigError, match="issuers"):
        hs(issuers="ops")
    with pytest.raises(TicketConfigError, match="claims"):
        hs(claims={"k": object()})


def test_signature_changes_with_every_parameter() -> None:
    variants = [
        hs(),
        JwtTicketValidator({"HS256": b"t" * 32}),
        JwtTicketValidator({"HS384": b"t" * 48}),
        hs(issuers=["ops"]),
        hs(audience=["a"]),
        hs(allow_non_expiring=True),
        hs(max_lifetime=60),
        hs(max_age=60),
        hs(claims={"k": 1}),
        hs(claims={"k": "1"}),
        hs(leeway=1),
    ]
    signatures = {v.signature() for v in variants}
    assert len(signatures) == len(variants)
    assert hs(issuers=["a", "b"]).signature() == hs(issuers=["b", "a"]).signature()
    assert hs().signature() == hs().signature()
    assert hs().class_id == JWT_CLASS == Digest.from_name("mosaik.tickets.jwt.v1")


def test_builder_mints_what_the_validator_accepts() -> None:
    builder = (
        JwtTicketBuilder(SECRET, "HS256")
        .issuer("ops")
        .audience("matchers")
        .expires_in(300)
        .claim("role", "matcher")
    )
    ticket = builder.mint(PEER.peer_id, now=NOW)
    assert ticket.class_id == JWT_CLASS
    validator = hs(issuers=["ops"], audience=["matchers"], claims={"role": "matcher"})
    assert validator.validate(ticket.data, PEER, NOW) == At(NOW + 300)
    payload = json.loads(base64.urlsafe_b64decode(ticket.data.split(b".")[1] + b"=="))
    assert payload == {
        "sub": PEER.peer_id.hex(),
        "iat": NOW,
        "exp": NOW + 300,
        "iss": "ops",
        "aud": "matchers",
        "role": "matcher",
    }
    # Builders are values: deriving one leaves the original untouched.
    assert "exp" not in jwt.decode(
        JwtTicketBuilder(SECRET, "HS256").mint(PEER.peer_id, now=NOW).data,
        SECRET,
        algorithms=["HS256"],
    )
    with pytest.raises(TicketConfigError, match="registered"):
        builder.claim("sub", "x")


def test_validate_all_with_jwt_and_revocation() -> None:
    ops = hs(issuers=["ops"])
    ed_key = Ed25519PrivateKey.generate()
    eddsa = JwtTicketValidator({"EdDSA": ed_key.public_key()})
    a = JwtTicketBuilder(SECRET, "HS256").issuer("ops").expires_in(500).mint(PEER.peer_id, now=NOW)
    b = JwtTicketBuilder(ed_key, "EdDSA").expires_in(200).mint(PEER.peer_id, now=NOW)
    peer = PEER.with_tickets(a, b)
    assert validate_all([ops, eddsa], peer, NOW) == At(NOW + 200)
    # Both validators are of the JWT class: each tries every JWT of the peer.
    with pytest.raises(TicketsRejected) as info:
        validate_all([ops, eddsa], PEER.with_tickets(a), NOW)
    assert info.value.check == "alg"
    with pytest.raises(TicketsRejected) as info:
        validate_all([ops, eddsa], PEER.with_tickets(), NOW)
    assert info.value.check == "missing"
    with pytest.raises(TicketsRejected) as info:
        validate_all([ops, eddsa], peer, NOW + 200)
    assert [r.check for r in info.value.rejections] == ["alg", "exp"]  # eddsa tried a, then b


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_rejects(data: bytes) -> None:
    with pytest.raises(TicketRejected):
        hs(allow_non_expiring=True).validate(data, PEER, NOW)


VALID = token(claims())


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255), st.integers(0, 3))
def test_fuzz_mutated_token_only_rejects(position: int, byte: int, cut: int) -> None:
    data = bytearray(VALID)
    data[position] = byte
    mutated = bytes(data[: len(data) - cut])
    if mutated == VALID:
        return
    # pyjwt insists on canonical base64url, so every change is caught, never slips through.
    with pytest.raises(TicketRejected):
        hs().validate(mutated, PEER, NOW)
