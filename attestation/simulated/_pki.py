"""The simulated platform's keys, certificates and CRLs (all ECDSA P-256, like Intel's).

    Simulated Intel SGX Root CA  (self-signed, CA, path length 1)
    ├── Simulated Intel SGX PCK Platform CA  (CA, path length 0)
    │   └── Simulated Intel SGX PCK Certificate  (end entity, SGX extension; signs QE reports)
    └── Simulated Intel SGX TCB Signing  (end entity; signs TCB info and QE identity)
    attestation key  (no certificate: the QE report binds it, as on real hardware)

Certificates carry the extensions of Intel's (key identifiers, key usage, basic constraints,
CRL distribution points) so dcap-qvl walks the same code as for real chains, and a fixed
validity window so no clock is read. Signatures are deterministic (RFC 6979).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attestation.simulated._der import SGX_EXTENSION_OID, sgx_extension

ROLES = ("root-ca", "pck-ca", "pck", "tcb-signing", "attestation")
"""The platform's keys, by role; every role but ``attestation`` has a certificate."""
CERTIFIED_ROLES = ROLES[:-1]

CERT_NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
CERT_NOT_AFTER = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)

# The simulated platform's TCB, as its PCK certificate states it.
FMSPC = bytes.fromhex("5E1A7ED00000")
CPU_SVN = bytes([2, 2, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0])
PCE_SVN = 13
PCE_ID = b"\x00\x00"
SGX_TYPE_SCALABLE = 1

_ORGANIZATION = "mosaik-py SIMULATED TDX platform (not Intel)"
_SUBJECTS = {
    "root-ca": "Simulated Intel SGX Root CA",
    "pck-ca": "Simulated Intel SGX PCK Platform CA",
    "pck": "Simulated Intel SGX PCK Certificate",
    "tcb-signing": "Simulated Intel SGX TCB Signing",
}
_ISSUERS = {"root-ca": "root-ca", "pck-ca": "root-ca", "pck": "pck-ca", "tcb-signing": "root-ca"}
_CRL_URLS = {
    "root-ca": "https://simulated-tdx.invalid/root-ca.crl",
    "pck-ca": "https://simulated-tdx.invalid/pck-platform-ca.crl",
}
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SIGNING = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)

Key = ec.EllipticCurvePrivateKey


def derived_key(seed: int, role: str) -> Key:
    """A P-256 key derived from ``seed`` (any int) and the role: reproducible test keys."""
    digest = hashlib.sha512(f"mosaik-py simulated TDX platform/{seed}/key/{role}".encode()).digest()
    return ec.derive_private_key(
        int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1()
    )


def derived_serial(seed: int, role: str) -> int:
    """A positive 19-byte certificate serial derived from ``seed`` and the role."""
    digest = hashlib.sha256(f"mosaik-py simulated TDX platform/{seed}/serial/{role}".encode())
    return int.from_bytes(digest.digest()[:19], "big") | 1


def raw_public_key(key: Key) -> bytes:
    """The 64-byte X || Y form of a P-256 public key (quotes carry keys this way)."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point[1:]


def sign_raw(key: Key, data: bytes) -> bytes:
    """An ECDSA-SHA256 signature as the 64-byte r || s that quotes and collateral carry."""
    r, s = decode_dss_signature(key.sign(data, _SIGNING))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class Pki:
    """A complete key and certificate set; ``certs`` has an entry per `CERTIFIED_ROLES`."""

    keys: dict[str, Key]
    certs: dict[str, x509.Certificate]

    @property
    def ppid(self) -> bytes:
        """The platform's PPID: a stable value derived from the root key."""
        return _root_digest(self.keys, b"ppid")

    def chain_pem(self, leaf: str) -> bytes:
        """The PEM chain from ``leaf`` up to and including the root, leaf first."""
        chain = [leaf]
        while chain[-1] != "root-ca":
            chain.append(_ISSUERS[chain[-1]])
        return b"".join(pem(self.certs[role]) for role in chain)

    def crl(
        self, issuer: str, this_update: int, next_update: int, revoked: Iterable[str] = ()
    ) -> bytes:
        """A DER CRL of ``issuer`` listing the certificates of the ``revoked`` roles."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certs[issuer].subject)
            .last_update(_utc(this_update))
            .next_update(_utc(next_update))
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(_authority_key_id(self.keys[issuer]), critical=False)
        )
        for role in revoked:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(self.certs[role].serial_number)
                .revocation_date(_utc(this_update))
                .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        crl = builder.sign(self.keys[issuer], hashes.SHA256(), ecdsa_deterministic=True)
        return crl.public_bytes(serialization.Encoding.DER)


def issue(keys: dict[str, Key], serial: Callable[[str], int]) -> Pki:
    """Certificates for ``keys`` (one per role of `ROLES`), numbered by ``serial(role)``."""
    certs = {role: _certificate(keys, role, serial(role)) for role in CERTIFIED_ROLES}
    return Pki(keys=keys, certs=certs)


def _root_digest(keys: dict[str, Key], purpose: bytes) -> bytes:
    return hashlib.sha256(purpose + b"/" + raw_public_key(keys["root-ca"])).digest()[:16]


def _certificate(keys: dict[str, Key], role: str, serial: int) -> x509.Certificate:
    issuer = _ISSUERS[role]
    key = keys[role].public_key()
    is_ca = role in _CRL_URLS
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(role))
        .issuer_name(_name(issuer))
        .public_key(key)
        .serial_number(serial)
        .not_valid_before(CERT_NOT_BEFORE)
        .not_valid_after(CERT_NOT_AFTER)
        .add_extension(_authority_key_id(keys[issuer]), critical=False)
        .add_extension(_crl_distribution_point(issuer), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(_key_usage(is_ca), critical=True)
        .add_extension(
            x509.BasicConstraints(
                ca=is_ca, path_length=(1 if role == "root-ca" else 0) if is_ca else None
            ),
            critical=True,
        )
    )
    if role == "pck":
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(SGX_EXTENSION_OID), _pck_extension(keys)
            ),
            critical=False,
        )
    return builder.sign(keys[issuer], hashes.SHA256(), ecdsa_deterministic=True)


def _pck_extension(keys: dict[str, Key]) -> bytes:
    return sgx_extension(
        ppid=_root_digest(keys, b"ppid"),
        cpu_svn=CPU_SVN,
        pce_svn=PCE_SVN,
        pce_id=PCE_ID,
        fmspc=FMSPC,
        sgx_type=SGX_TYPE_SCALABLE,
        platform_instance_id=_root_digest(keys, b"platform instance id"),
        dynamic_platform=True,
        cached_keys=True,
        smt_enabled=True,
    )


def _name(role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _SUBJECTS[role]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
        ]
    )


def _authority_key_id(issuer_key: Key) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def _crl_distribution_point(issuer: str) -> x509.CRLDistributionPoints:
    url = x509.UniformResourceIdentifier(_CRL_URLS[issuer])
    return x509.CRLDistributionPoints(
        [x509.DistributionPoint(full_name=[url], relative_name=None, reasons=None, crl_issuer=None)]
    )


def _key_usage(is_ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not is_ca,
        content_commitment=not is_ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )


def _utc(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)
