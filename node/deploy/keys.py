"""Per-node identities for a rollout: secret keys in an Ansible Vault file, peer ids and seeds
in a plain vars file beside it (both in the inventory's ``group_vars/all`` by default).

A host keeps its key across runs (its peer id is its identity in every catalog); hosts new to
the inventory get a fresh key; hosts gone from it keep theirs until removed by hand. Secret
keys exist in clear only in memory: they are never printed, logged, or written unencrypted.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from node.deploy.errors import InventoryError, VaultError
from node.deploy.inventory import Inventory
from node.deploy.vault import VaultPassword, decrypt, encrypt
from node.errors import ConfigError
from node.primitives.keys import SecretKey

VAULT_FILE: Final = "mosaik_keys.vault.yml"
PEERS_FILE: Final = "mosaik_peers.yml"
SECRETS_VAR: Final = "mosaik_node_secret_keys"
PEERS_VAR: Final = "mosaik_node_peers"
SEEDS_VAR: Final = "mosaik_node_seeds"
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_PEERS_HEADER: Final = (
    "# Written by `mosaik deploy keys`: peer ids (public) and seeds; the secret keys are in\n"
    f"# {VAULT_FILE} (Ansible Vault). Rerun the command instead of editing this file.\n"
)


@dataclass(frozen=True, slots=True)
class KeysReport:
    """What ``write_keys`` did; holds no secret."""

    vault_file: Path
    peers_file: Path
    added: tuple[str, ...]
    kept: tuple[str, ...]
    seeds: tuple[str, ...]
    peers: Mapping[str, str]


def default_keys_dir(inventory_path: Path) -> Path:
    """``group_vars/all`` beside the inventory, where ansible-playbook loads vars by itself."""
    base = inventory_path if inventory_path.is_dir() else inventory_path.parent
    return base / "group_vars" / "all"


def write_keys(
    inventory: Inventory,
    seeds: Sequence[str],
    out_dir: Path,
    password: VaultPassword,
    generate: Callable[[], SecretKey] = SecretKey.generate,
) -> KeysReport:
    """Give every node host a key (keeping existing ones) and write the vault and peers files."""
    unknown = [seed for seed in seeds if seed not in inventory.hosts]
    if unknown:
        raise InventoryError(f"seed(s) {', '.join(unknown)} are not hosts of the inventory")
    vault_file, peers_file = out_dir / VAULT_FILE, out_dir / PEERS_FILE
    existing = read_secret_keys(vault_file, password) if vault_file.exists() else {}
    secrets = dict(existing)
    added = []
    for host in inventory.hosts:
        if host not in secrets:
            secrets[host] = generate().seed.hex()
            added.append(host)
    peers = {host: SecretKey.from_hex(secret).peer_id.hex() for host, secret in secrets.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(vault_file, encrypt(_dump({SECRETS_VAR: secrets}).encode(), password), 0o600)
    peers_text = _PEERS_HEADER + _dump({PEERS_VAR: peers, SEEDS_VAR: list(seeds)})
    _write_atomic(peers_file, peers_text.encode(), 0o644)
    return KeysReport(
        vault_file=vault_file,
        peers_file=peers_file,
        added=tuple(added),
        kept=tuple(host for host in inventory.hosts if host in existing),
        seeds=tuple(seeds),
        peers=peers,
    )


def read_secret_keys(path: Path, password: VaultPassword) -> dict[str, str]:
    """Host -> secret key (hex) from a vault file written by ``write_keys``."""
    try:
        vaulttext = path.read_bytes()
    except OSError as exc:
        raise VaultError(f"{path}: cannot read: {exc.strerror}") from None
    document = _load(decrypt(vaulttext, password, str(path)), str(path))
    table = document.get(SECRETS_VAR) if isinstance(document, dict) else None
    if not isinstance(table, dict):
        raise VaultError(f"{path}: no {SECRETS_VAR} mapping (not written by `mosaik deploy keys`)")
    secrets: dict[str, str] = {}
    for host, secret in table.items():
        if not isinstance(secret, str) or not _HEX64.fullmatch(secret):
            raise VaultError(f"{path}: {SECRETS_VAR}[{host!r}] is not 64 lowercase hex digits")
        try:
            SecretKey.from_hex(secret)
        except ConfigError as exc:
            raise VaultError(f"{path}: {SECRETS_VAR}[{host!r}]: {exc}") from None
        secrets[str(host)] = secret
    return secrets


def _dump(document: Mapping[str, Any]) -> str:
    import yaml

    text: str = yaml.safe_dump(dict(document), sort_keys=True, default_flow_style=False)
    return text


def _load(text: bytes, source: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise VaultError(f"{source}: the decrypted vault is not YAML: {exc}") from None


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` in one rename; the file never exists with a wider mode."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
