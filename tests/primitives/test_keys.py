from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.errors import ConfigError
from node.primitives import PeerId, SecretKey


def test_sign_verify() -> None:
    key = SecretKey.generate()
    sig = key.sign(b"message")
    assert key.peer_id.verify(sig, b"message")
    assert not key.peer_id.verify(sig, b"other")
    assert not SecretKey.generate().peer_id.verify(sig, b"message")
    assert not key.peer_id.verify(b"\x00" * 64, b"message")


def test_seed_is_deterministic() -> None:
    seed = bytes(range(32))
    assert SecretKey.from_seed(seed).peer_id == SecretKey.from_seed(seed).peer_id
    # RFC 8032 test 1: secret key 9d61...7f60 has public key d75a...511a.
    rfc = SecretKey.from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert rfc.peer_id.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def test_file_round_trip_with_0600(tmp_path: Path) -> None:
    key = SecretKey.generate()
    path = tmp_path / "node.key"
    key.to_file(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert SecretKey.from_file(path).peer_id == key.peer_id


def test_existing_file_is_never_overwritten_by_accident(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first = SecretKey.generate()
    first.to_file(path)
    with pytest.raises(ConfigError, match="already exists"):
        SecretKey.generate().to_file(path)
    assert SecretKey.from_file(path).peer_id == first.peer_id


def test_world_readable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    SecretKey.generate().to_file(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        SecretKey.from_file(path)


@pytest.mark.parametrize(
    ("content", "message"), [("zz", "not hex"), ("abcd", "32 bytes"), ("", "32 bytes")]
)
def test_bad_file_contents(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "node.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=message):
        SecretKey.from_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SecretKey.from_file(tmp_path / "absent")


def test_peer_id_hex_errors() -> None:
    with pytest.raises(ConfigError, match="not hex"):
        PeerId.from_hex("nope")
    with pytest.raises(ConfigError, match="64 hex"):
        PeerId.from_hex("ab")
