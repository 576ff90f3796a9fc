"""Per-node keys in an Ansible Vault file: round trip, stability, and no secret in clear."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")

from node.deploy.errors import InventoryError, VaultError
from node.deploy.inventory import Inventory, inventory_from_groups
from node.deploy.keys import PEERS_FILE, VAULT_FILE, read_secret_keys, write_keys
from node.deploy.vault import (
    PASSWORD_ENV,
    VaultPassword,
    decrypt,
    encrypt,
    password_file_for_ansible,
    read_password,
)
from node.primitives.keys import SecretKey

PASSWORD = VaultPassword(b"s3cret-for-tests")


def _inventory(*hosts: str) -> Inventory:
    return inventory_from_groups("hosts.yml", {"mosaik_nodes": list(hosts)})


def test_round_trip_gives_valid_keys_matching_the_peer_ids(tmp_path: Path) -> None:
    report = write_keys(_inventory("a", "b", "c"), ["a"], tmp_path, PASSWORD)
    assert report.added == ("a", "b", "c") and report.kept == ()
    secrets = read_secret_keys(tmp_path / VAULT_FILE, PASSWORD)
    assert set(secrets) == {"a", "b", "c"}
    peers = yaml.safe_load((tmp_path / PEERS_FILE).read_text())
    assert peers["mosaik_node_seeds"] == ["a"]
    for host, secret in secrets.items():
        assert SecretKey.from_hex(secret).peer_id.hex() == peers["mosaik_node_peers"][host]
        assert report.peers[host] == peers["mosaik_node_peers"][host]


def test_nothing_secret_is_written_in_clear(tmp_path: Path) -> None:
    write_keys(_inventory("a", "b"), ["a"], tmp_path, PASSWORD)
    secrets = read_secret_keys(tmp_path / VAULT_FILE, PASSWORD)
    vault_text = (tmp_path / VAULT_FILE).read_bytes()
    assert vault_text.startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    everything = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in secrets.values():
        assert secret.encode() not in everything
    assert stat.S_IMODE((tmp_path / VAULT_FILE).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_rerun_keeps_keys_and_adds_new_hosts(tmp_path: Path) -> None:
    write_keys(_inventory("a", "b"), ["a"], tmp_path, PASSWORD)
    before = read_secret_keys(tmp_path / VAULT_FILE, PASSWORD)
    report = write_keys(_inventory("a", "b", "c"), ["a", "c"], tmp_path, PASSWORD)
    after = read_secret_keys(tmp_path / VAULT_FILE, PASSWORD)
    assert report.added == ("c",) and report.kept == ("a", "b")
    assert {h: after[h] for h in before} == before
    assert report.seeds == ("a", "c")


def test_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    write_keys(_inventory("a"), ["a"], tmp_path, PASSWORD)
    with pytest.raises(VaultError, match="cannot decrypt with the vault password"):
        read_secret_keys(tmp_path / VAULT_FILE, VaultPassword(b"wrong"))


def test_a_vault_file_in_clear_is_refused(tmp_path: Path) -> None:
    clear = tmp_path / VAULT_FILE
    clear.write_text("mosaik_node_secret_keys: {a: '00'}\n")
    with pytest.raises(VaultError, match="not an Ansible Vault file"):
        write_keys(_inventory("a"), ["a"], tmp_path, PASSWORD)


def test_malformed_vault_content_names_the_host(tmp_path: Path) -> None:
    path = tmp_path / VAULT_FILE
    path.write_bytes(encrypt(b"mosaik_node_secret_keys:\n  a: nothex\n", PASSWORD))
    with pytest.raises(VaultError, match=r"\['a'\] is not 64 lowercase hex"):
        read_secret_keys(path, PASSWORD)


def test_seed_must_be_a_host(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="ghost"):
        write_keys(_inventory("a"), ["ghost"], tmp_path, PASSWORD)


def test_ansible_vault_reads_what_we_write(tmp_path: Path) -> None:
    """The other direction of the round trip: ansible's own vault CLI decrypts the file."""
    import subprocess
    import sys

    write_keys(_inventory("a"), ["a"], tmp_path, PASSWORD)
    password_file = tmp_path / "password"
    password_file.write_bytes(PASSWORD.secret + b"\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ansible",
            "vault",
            "view",
            "--vault-password-file",
            str(password_file),
            str(tmp_path / VAULT_FILE),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = yaml.safe_load(result.stdout)["mosaik_node_secret_keys"]["a"]
    assert secret == read_secret_keys(tmp_path / VAULT_FILE, PASSWORD)["a"]


def test_password_from_file_environment_or_script(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("from-file\n")
    assert read_password(plain, {}).secret == b"from-file"
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho from-script\n")
    script.chmod(0o700)
    assert read_password(script, {}).secret == b"from-script"
    password = read_password(None, {PASSWORD_ENV: "from-env"})
    assert password.secret == b"from-env" and "from-env" not in repr(password)
    with pytest.raises(VaultError, match=PASSWORD_ENV):
        read_password(None, {})


def test_environment_password_reaches_ansible_through_a_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "via-env")
    password = read_password(None)
    with password_file_for_ansible(password) as script:
        assert b"via-env" not in script.read_bytes()
        assert read_password(script, {}).secret == b"via-env"
    assert not script.exists()


def test_decrypt_rejects_tampering(tmp_path: Path) -> None:
    vaulttext = encrypt(b"hello", PASSWORD)
    lines = vaulttext.splitlines()
    lines[2] = bytes([lines[2][0] ^ 1]) + lines[2][1:]
    with pytest.raises(VaultError):
        decrypt(b"\n".join(lines), PASSWORD, "tampered")
