"""node.deploy's exported names, and bad input raising only its own errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import node.deploy
from node.deploy import (
    DeployError,
    InventoryError,
    VaultError,
    VaultPassword,
    WheelhouseError,
    load_inventory,
    read_index,
    read_password,
    read_secret_keys,
)

EXPECTED = {
    "AnsibleMissing", "DeployError", "Inventory", "InventoryError", "KeysReport",
    "PlaybookFailed", "PlaybookRun", "VaultError", "VaultPassword", "WheelhouseError",
    "WheelhouseIndex", "build_wheelhouse", "decrypt", "default_keys_dir", "default_playbook",
    "derive_seeds", "encrypt", "inventory_from_groups", "load_inventory", "pack_wheelhouse",
    "playbook_command", "read_index", "read_password", "read_secret_keys", "run_playbook",
    "write_keys",
}  # fmt: skip


def test_exported_names_are_pinned() -> None:
    assert set(node.deploy.__all__) == EXPECTED
    assert all(getattr(node.deploy, name) is not None for name in EXPECTED)


def test_errors_share_one_base() -> None:
    for name in EXPECTED:
        value = getattr(node.deploy, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, DeployError), name


def test_garbage_inventory_is_an_inventory_error(tmp_path: Path) -> None:
    pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")
    path = tmp_path / "hosts.yml"
    path.write_text(": not [ yaml\n\x00")
    with pytest.raises(InventoryError):
        load_inventory(path)


def test_bad_vault_inputs_are_vault_errors(tmp_path: Path) -> None:
    pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")
    with pytest.raises(VaultError, match="cannot read"):
        read_secret_keys(tmp_path / "missing.yml", VaultPassword(b"x"))
    with pytest.raises(VaultError):
        read_password(tmp_path, {})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(VaultError):
        read_password(empty, {})


def test_corrupt_wheelhouse_index_is_a_wheelhouse_error(tmp_path: Path) -> None:
    (tmp_path / "wheelhouse.json").write_text("{not json")
    with pytest.raises(WheelhouseError, match="unreadable wheelhouse index"):
        read_index(tmp_path)
    (tmp_path / "wheelhouse.json").write_text('{"format": 1, "project": "mosaik-py"}')
    with pytest.raises(WheelhouseError, match="unreadable wheelhouse index"):
        read_index(tmp_path)
