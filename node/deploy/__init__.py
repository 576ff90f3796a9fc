"""Rollout with Ansible: wheelhouse, per-node keys in a vault, and ``ansible-playbook`` runs.

The playbooks live in ``playbooks/`` of the source tree; ``mosaik deploy`` wraps them.
ansible-core (the ``deploy`` extra) is imported only by what needs it.
"""

from __future__ import annotations

from node.deploy.errors import (
    AnsibleMissing,
    DeployError,
    InventoryError,
    PlaybookFailed,
    VaultError,
    WheelhouseError,
)
from node.deploy.inventory import Inventory, derive_seeds, inventory_from_groups, load_inventory
from node.deploy.keys import KeysReport, default_keys_dir, read_secret_keys, write_keys
from node.deploy.playbook import PlaybookRun, default_playbook, playbook_command, run_playbook
from node.deploy.vault import VaultPassword, decrypt, encrypt, read_password
from node.deploy.wheelhouse import (
    WheelhouseIndex,
    build_wheelhouse,
    pack_wheelhouse,
    read_index,
)

__all__ = [
    "AnsibleMissing",
    "DeployError",
    "Inventory",
    "InventoryError",
    "KeysReport",
    "PlaybookFailed",
    "PlaybookRun",
    "VaultError",
    "VaultPassword",
    "WheelhouseError",
    "WheelhouseIndex",
    "build_wheelhouse",
    "decrypt",
    "default_keys_dir",
    "default_playbook",
    "derive_seeds",
    "encrypt",
    "inventory_from_groups",
    "load_inventory",
    "pack_wheelhouse",
    "playbook_command",
    "read_index",
    "read_password",
    "read_secret_keys",
    "run_playbook",
    "write_keys",
]
