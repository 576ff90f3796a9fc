"""Ansible Vault: the password (a file, or an environment variable) and whole-file encryption.

The password is held in a ``VaultPassword`` whose ``repr`` shows nothing secret. A password
given by environment reaches ``ansible-playbook`` through a small script that prints the
variable (``password_file_for_ansible``), so neither the password nor the keys touch the disk
in clear.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from node.deploy.errors import AnsibleMissing, VaultError

PASSWORD_ENV: Final = "MOSAIK_VAULT_PASSWORD"
_PASSWORD_SCRIPT: Final = f'#!/bin/sh\nprintf "%s\\n" "${PASSWORD_ENV}"\n'


@dataclass(frozen=True, slots=True)
class VaultPassword:
    """A vault password and where it came from (a file path, or the environment)."""

    secret: bytes = field(repr=False)
    file: Path | None = None

    @property
    def source(self) -> str:
        return str(self.file) if self.file is not None else f"${PASSWORD_ENV}"


def read_password(file: Path | None, environ: Mapping[str, str] | None = None) -> VaultPassword:
    """The password from ``file`` (run if executable, as Ansible does) or the environment."""
    environ = os.environ if environ is None else environ
    if file is not None:
        return VaultPassword(_read_file_secret(file), file)
    value = environ.get(PASSWORD_ENV, "")
    if not value:
        raise VaultError(
            f"no vault password: pass --vault-password-file FILE or set {PASSWORD_ENV}"
        )
    return VaultPassword(value.encode())


def _read_file_secret(file: Path) -> bytes:
    vault = _vault_module()
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader

    try:
        secret = vault.get_file_vault_secret(filename=str(file), loader=DataLoader())
        secret.load()
    except AnsibleError as exc:
        raise VaultError(f"vault password file {file}: {exc.message}") from None
    data: bytes | None = secret.bytes
    if not data:
        raise VaultError(f"vault password file {file} is empty")
    return data


def encrypt(plaintext: bytes, password: VaultPassword) -> bytes:
    """Whole-file vault text (``$ANSIBLE_VAULT;1.1;AES256`` ...) of ``plaintext``."""
    vault = _vault_module()
    lib = vault.VaultLib([("default", vault.VaultSecret(password.secret))])
    data: bytes = lib.encrypt(plaintext)
    return data


def decrypt(vaulttext: bytes, password: VaultPassword, source: str) -> bytes:
    """The plaintext of vault text read from ``source`` (a wrong password is a ``VaultError``)."""
    vault = _vault_module()
    from ansible.errors import AnsibleError

    if not vault.is_encrypted(vaulttext):
        raise VaultError(f"{source}: not an Ansible Vault file (refusing to read keys in clear)")
    lib = vault.VaultLib([("default", vault.VaultSecret(password.secret))])
    try:
        data: bytes = lib.decrypt(vaulttext)
    except AnsibleError:
        raise VaultError(
            f"{source}: cannot decrypt with the vault password from {password.source}"
        ) from None
    return data


@contextmanager
def password_file_for_ansible(password: VaultPassword) -> Iterator[Path]:
    """A ``--vault-password-file`` for ansible: the password's own file, or (environment) a
    private script that prints ``$MOSAIK_VAULT_PASSWORD``; the script holds no secret."""
    if password.file is not None:
        yield password.file
        return
    with tempfile.TemporaryDirectory(prefix="mosaik-vault-") as directory:
        script = Path(directory) / "vault-password"
        script.write_text(_PASSWORD_SCRIPT)
        script.chmod(stat.S_IRWXU)
        yield script


def _vault_module() -> Any:
    try:
        from ansible.parsing import vault
    except ImportError:
        raise AnsibleMissing("Ansible Vault") from None
    return vault
