"""Node identity: an ed25519 secret key and the peer id (its public key) it proves."""

from __future__ import annotations

import builtins
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from node.errors import ConfigError

KEY_SIZE = 32
SIGNATURE_SIZE = 64


class PeerId:
    """An ed25519 public key: the identity a node proves on every connection."""

    __slots__ = ("_bytes", "_key")

    def __init__(self, data: bytes) -> None:
        if len(data) != KEY_SIZE:
            raise ValueError(f"a peer id is {KEY_SIZE} bytes, got {len(data)}")
        self._bytes = bytes(data)
        self._key: Ed25519PublicKey | None = None

    @classmethod
    def from_hex(cls, text: str) -> PeerId:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ConfigError(f"peer id is not hex: {text!r}") from None
        if len(raw) != KEY_SIZE:
            raise ConfigError(f"peer id has {2 * KEY_SIZE} hex characters, got {len(text)}")
        return cls(raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        if self._key is None:
            try:
                self._key = Ed25519PublicKey.from_public_bytes(self._bytes)
            except ValueError:
                return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @property
    def bytes(self) -> bytes:
        return self._bytes

    def hex(self) -> str:
        return self._bytes.hex()

    def short(self) -> str:
        return self._bytes[:5].hex()

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"PeerId({self.short()}…)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PeerId) and other._bytes == self._bytes

    def __lt__(self, other: PeerId) -> bool:
        return self._bytes < other._bytes

    def __le__(self, other: PeerId) -> bool:
        return self._bytes <= other._bytes

    def __gt__(self, other: PeerId) -> bool:
        return self._bytes > other._bytes

    def __ge__(self, other: PeerId) -> bool:
        return self._bytes >= other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __bytes__(self) -> builtins.bytes:
        return self._bytes


class SecretKey:
    """An ed25519 signing key. Files hold its 32-byte seed as hex, mode 0600."""

    __slots__ = ("_key", "_peer_id")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._peer_id = PeerId(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SecretKey:
        if len(seed) != KEY_SIZE:
            raise ConfigError(f"a secret key seed is {KEY_SIZE} bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_hex(cls, text: str) -> SecretKey:
        try:
            seed = bytes.fromhex(text.strip())
        except ValueError:
            raise ConfigError("secret key is not hex") from None
        return cls.from_seed(seed)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SecretKey:
        path = Path(path)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"secret key file {path} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"secret key file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"secret key file {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
            )
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"secret key file {path} cannot be read: {exc}") from None
        try:
            return cls.from_hex(text)
        except ConfigError as exc:
            raise ConfigError(f"secret key file {path}: {exc}") from None

    def to_file(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the seed as hex with mode 0600; never replaces an existing key by accident."""
        path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise ConfigError(f"{path} already exists; refusing to overwrite a key") from None
        except OSError as exc:
            raise ConfigError(f"cannot write secret key to {path}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(self.seed.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())

    @property
    def seed(self) -> bytes:
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def peer_id(self) -> PeerId:
        return self._peer_id

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._key

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"SecretKey(peer_id={self._peer_id.short()}…)"
