"""Bad inventories fail in the preflight play with a clear message, before any host changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")

from tests.deploy.fakes import (
    fake_root_vars,
    fake_wheelhouse,
    give_keys,
    make_roots,
    run_site,
    tree,
    write_inventory,
    write_password,
)

Edit = Callable[[Path, dict[str, object]], None]


def _fails_before_changing(
    tmp_path: Path, edit: Edit, expected: str, keyed: tuple[str, ...] = ("a", "b")
) -> str:
    """Build a two-node world (keys for ``keyed``), apply ``edit``, run: it must fail with
    ``expected`` in the preflight play, with nothing changed on any host."""
    root = tmp_path / "root"
    wheelhouse = fake_wheelhouse(tmp_path / "wheelhouse", "0.0.1")
    variables = fake_root_vars(root, wheelhouse)
    password = write_password(tmp_path / "vault-password")
    give_keys(tmp_path / "inventory/hosts.yml", keyed, ["a"], password)
    edit(tmp_path, variables)
    inventory = write_inventory(tmp_path / "inventory", {"a": ["seed"], "b": []}, variables)
    make_roots(root, ["a", "b"])
    before = tree(root)
    code, output = run_site(inventory, password.file)
    assert code != 0, output[-3000:]
    assert expected in " ".join(output.split()), output[-3000:]
    assert "Roll out mosaik nodes" not in output
    assert tree(root) == before
    return output


def _peers_file(tmp_path: Path) -> Path:
    return tmp_path / "inventory/group_vars/all/mosaik_peers.yml"


def _set_seeds(directory: Path, seeds: list[str]) -> None:
    document = yaml.safe_load(_peers_file(directory).read_text())
    document["mosaik_node_seeds"] = seeds
    _peers_file(directory).write_text(yaml.safe_dump(document))


def test_inventory_without_seeds(tmp_path: Path) -> None:
    def no_seeds(directory: Path, variables: dict[str, object]) -> None:
        _set_seeds(directory, [])

    _fails_before_changing(tmp_path, no_seeds, "no seed nodes in the inventory")


def test_seed_that_is_not_a_host(tmp_path: Path) -> None:
    def ghost_seed(directory: Path, variables: dict[str, object]) -> None:
        _set_seeds(directory, ["ghost"])

    _fails_before_changing(tmp_path, ghost_seed, "seed(s) ghost are not inventory hosts")


def test_node_without_a_key_in_the_vault(tmp_path: Path) -> None:
    def unchanged(directory: Path, variables: dict[str, object]) -> None:
        pass

    _fails_before_changing(
        tmp_path, unchanged, "no secret key (or peer id) for b in the vault", keyed=("a",)
    )


def test_unknown_tag_name_format(tmp_path: Path) -> None:
    def bad_tag(directory: Path, variables: dict[str, object]) -> None:
        variables["mosaik_node_extra_tags"] = ["bad/tag"]

    _fails_before_changing(tmp_path, bad_tag, "tag name(s) bad/tag of a")


def test_bad_network_name(tmp_path: Path) -> None:
    def bad_network(directory: Path, variables: dict[str, object]) -> None:
        variables["mosaik_node_network"] = "has space"

    _fails_before_changing(tmp_path, bad_network, 'mosaik_node_network "has space" is not')


def test_missing_wheelhouse(tmp_path: Path) -> None:
    def no_wheelhouse(directory: Path, variables: dict[str, object]) -> None:
        variables["mosaik_node_wheelhouse"] = str(directory / "nowhere")

    _fails_before_changing(tmp_path, no_wheelhouse, "is not a wheelhouse on the controller")


def test_peers_file_is_plain_yaml_with_seeds(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory", {"a": ["seed"], "b": []}, {})
    password = write_password(tmp_path / "vault-password")
    keys = give_keys(inventory, ["a", "b"], ["a"], password)
    document = yaml.safe_load(_peers_file(tmp_path).read_text())
    assert document["mosaik_node_seeds"] == ["a"]
    assert document["mosaik_node_peers"] == {h: k.peer_id.hex() for h, k in keys.items()}
