"""The simulated platform's state directory: its keys and certificates, stable across runs.

    <state_dir>/SIMULATED          marker, written last: the state is complete
    <state_dir>/<role>.key         PKCS#8 PEM private key, mode 0600 (one per key role)
    <state_dir>/<role>.pem         its certificate (every role but ``attestation``)

Every file is written atomically (temporary file, fsync, rename). Creation holds an exclusive
lock on ``<state_dir>/.lock``, so processes opening the same new directory agree on one set of
keys. A directory without the marker (a creation that died halfway) is created afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.simulated._pki import CERTIFIED_ROLES, ROLES, Key, Pki, issue, pem
from attestation.simulated.errors import SimulatedStateError

MARKER = "SIMULATED"
_MARKER_TEXT = (
    "This directory holds the keys of a SIMULATED Intel TDX platform (mosaik-py).\n"
    "Its quotes verify only against its own root CA (root-ca.pem), never Intel's.\n"
)


def load_or_create(state_dir: Path) -> Pki:
    """The platform in ``state_dir``, created there with fresh random keys on first use."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(state_dir / ".lock"):
            if (state_dir / MARKER).exists():
                return _load(state_dir)
            pki = issue(
                {role: ec.generate_private_key(ec.SECP256R1()) for role in ROLES},
                lambda _role: x509.random_serial_number(),
            )
            _save(state_dir, pki)
            return pki
    except OSError as e:
        raise SimulatedStateError(f"{state_dir}: {e.strerror or e}") from e


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _load(state_dir: Path) -> Pki:
    keys = {role: _load_key(state_dir / f"{role}.key") for role in ROLES}
    certs = {}
    for role in CERTIFIED_ROLES:
        path = state_dir / f"{role}.pem"
        try:
            cert = x509.load_pem_x509_certificate(_read(path))
        except ValueError as e:
            raise SimulatedStateError(f"{path}: not a PEM certificate ({e})") from e
        if cert.public_key() != keys[role].public_key():
            raise SimulatedStateError(f"{path}: certificate does not match {role}.key")
        certs[role] = cert
    return Pki(keys=keys, certs=certs)


def _load_key(path: Path) -> Key:
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as e:
        raise SimulatedStateError(f"{path}: not an unencrypted PEM private key ({e})") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SimulatedStateError(f"{path}: expected an ECDSA P-256 private key")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise SimulatedStateError(f"{path}: missing from the simulated platform's state") from e


def _save(state_dir: Path, pki: Pki) -> None:
    for role, key in pki.keys.items():
        encoded = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_atomically(state_dir / f"{role}.key", encoded, 0o600)
    for role, cert in pki.certs.items():
        _write_atomically(state_dir / f"{role}.pem", pem(cert), 0o644)
    _write_atomically(state_dir / MARKER, _MARKER_TEXT.encode(), 0o644)
    directory = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(directory)  # the renames themselves must survive a crash
    finally:
        os.close(directory)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask may have narrowed the creation mode
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
