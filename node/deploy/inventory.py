"""The inventory as ``mosaik deploy keys`` needs it: the node hosts in order and their groups.

Only the inventory's hosts and groups are read (ansible-core's ``InventoryManager``), never
its variables, so reading it needs no vault password and decrypts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.deploy.errors import AnsibleMissing, InventoryError

NODES_GROUP: Final = "mosaik_nodes"
SEED_GROUP: Final = "seed"


@dataclass(frozen=True, slots=True)
class Inventory:
    """Hosts of ``nodes_group`` in inventory order, and every group's hosts (children's too)."""

    source: str
    nodes_group: str
    hosts: tuple[str, ...]
    groups: Mapping[str, tuple[str, ...]]

    def members(self, group: str) -> tuple[str, ...]:
        """The node hosts that are in ``group``, in inventory order."""
        inside = set(self.groups.get(group, ()))
        return tuple(host for host in self.hosts if host in inside)


def inventory_from_groups(
    source: str, groups: Mapping[str, Sequence[str]], nodes_group: str = NODES_GROUP
) -> Inventory:
    """An ``Inventory`` from group -> hosts (as ansible lists them); checks the node group."""
    hosts = tuple(dict.fromkeys(groups.get(nodes_group, ())))
    if not hosts:
        known = ", ".join(sorted(g for g in groups if g not in ("all", "ungrouped"))) or "none"
        raise InventoryError(
            f"{source}: no hosts in group {nodes_group!r} (groups: {known}); "
            f"put the node hosts in {nodes_group}"
        )
    return Inventory(
        source=source,
        nodes_group=nodes_group,
        hosts=hosts,
        groups={name: tuple(members) for name, members in groups.items()},
    )


def load_inventory(path: Path, nodes_group: str = NODES_GROUP) -> Inventory:
    """Read an inventory file or directory with ansible-core (hosts and groups only)."""
    if not path.exists():
        raise InventoryError(f"{path}: no such inventory file or directory")
    try:
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
    except ImportError:
        raise AnsibleMissing("reading the inventory") from None
    try:
        manager = InventoryManager(loader=DataLoader(), sources=[str(path)])
        listing = manager.get_groups_dict()
    except AnsibleError as exc:
        raise InventoryError(f"{path}: {exc.message}") from None
    # Plain str: ansible tags its strings with their origin; YAML and callers want str.
    groups = {str(group): [str(host) for host in hosts] for group, hosts in listing.items()}
    return inventory_from_groups(str(path), groups, nodes_group)


def derive_seeds(
    inventory: Inventory, seed_group: str = SEED_GROUP, count: int = 0
) -> tuple[str, ...]:
    """The seed hosts: the node hosts in ``seed_group`` or, when there are none, the first
    ``count``. Neither is an error: a network without seeds cannot form."""
    if count < 0:
        raise InventoryError(f"seed count must not be negative, got {count}")
    tagged = inventory.members(seed_group)
    if tagged:
        return tagged
    if count:
        return inventory.hosts[:count]
    raise InventoryError(
        f"{inventory.source}: no seed nodes: no host of {inventory.nodes_group} is in group "
        f"{seed_group!r}; add some (or pass --seed-count N to use the first N hosts)"
    )
