"""Inventory -> node hosts and seed list."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.deploy.errors import InventoryError
from node.deploy.inventory import derive_seeds, inventory_from_groups, load_inventory


def test_seeds_are_the_node_hosts_in_group_seed_in_inventory_order() -> None:
    inventory = inventory_from_groups(
        "inv", {"mosaik_nodes": ["c", "a", "b"], "seed": ["b", "c", "elsewhere"]}
    )
    assert derive_seeds(inventory) == ("c", "b")
    assert derive_seeds(inventory, count=1) == ("c", "b")  # the group wins over a count


def test_without_a_seed_group_the_first_n_hosts_are_seeds() -> None:
    inventory = inventory_from_groups("inv", {"mosaik_nodes": ["c", "a", "b"]})
    assert derive_seeds(inventory, count=2) == ("c", "a")
    assert derive_seeds(inventory, count=9) == ("c", "a", "b")


def test_an_inventory_without_seeds_is_an_error() -> None:
    inventory = inventory_from_groups("inv", {"mosaik_nodes": ["a"], "seed": []})
    with pytest.raises(InventoryError, match=r"no seed nodes.*--seed-count"):
        derive_seeds(inventory)
    with pytest.raises(InventoryError, match="negative"):
        derive_seeds(inventory, count=-1)


def test_an_inventory_without_node_hosts_is_an_error() -> None:
    with pytest.raises(InventoryError, match=r"no hosts in group 'mosaik_nodes'.*web"):
        inventory_from_groups("inv", {"all": ["x"], "web": ["x"]})


def test_load_yaml_inventory_with_nested_groups(tmp_path: Path) -> None:
    pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    mosaik_nodes:\n      hosts:\n        n3:\n        n1:\n"
        "      children:\n        seed:\n          hosts:\n            n2:\n"
        "    other:\n      hosts:\n        x:\n"
    )
    inventory = load_inventory(path)
    assert inventory.hosts == ("n3", "n1", "n2")
    assert derive_seeds(inventory) == ("n2",)
    assert all(type(host) is str for host in inventory.hosts)


def test_load_ini_inventory(tmp_path: Path) -> None:
    pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")
    path = tmp_path / "hosts.ini"
    path.write_text("[mosaik_nodes]\nb ansible_host=10.0.0.2\na\n\n[seed]\na\n")
    inventory = load_inventory(path)
    assert inventory.hosts == ("b", "a")
    assert derive_seeds(inventory) == ("a",)


def test_missing_inventory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such inventory"):
        load_inventory(tmp_path / "nope.yml")
