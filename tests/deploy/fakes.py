"""A world for running the real playbook against fake roots on this machine (no systemd).

``fake_runtime_wheel`` is a tiny stand-in for the mosaik-py wheel (a ``mosaik`` console script
that prints its version), so the role's install path (venv, ``pip --no-index`` from the
wheelhouse) runs for real, offline and fast.
"""

from __future__ import annotations

import base64
import ensurepip
import grp
import hashlib
import os
import pwd
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from node.deploy.inventory import inventory_from_groups
from node.deploy.keys import default_keys_dir, write_keys
from node.deploy.vault import VaultPassword
from node.deploy.wheelhouse import pack_wheelhouse
from node.primitives.keys import SecretKey

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
SITE = PLAYBOOKS / "site.yml"
PASSWORD = "correct horse battery staple"
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def service_account() -> tuple[str, str]:
    """A user and group other than root to own the node's files (when running as root)."""
    if os.geteuid() == 0:
        return "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


def fake_runtime_wheel(directory: Path, version: str) -> Path:
    """``mosaik_py-VERSION-py3-none-any.whl`` with a ``mosaik`` script printing VERSION."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"mosaik_py-{version}.dist-info"
    files = {
        "mosaik_fake_runtime.py": (
            f"def main():\n    print('mosaik, version {version}')\n".encode()
        ),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: mosaik-py\nVersion: {version}\n".encode()
        ),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{info}/entry_points.txt": b"[console_scripts]\nmosaik = mosaik_fake_runtime:main\n",
    }
    record = "".join(
        f"{name},sha256={_b64(hashlib.sha256(data).digest())},{len(data)}\n"
        for name, data in files.items()
    )
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = directory / f"mosaik_py-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)
    return path


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def bundled_pip() -> Path:
    """The pip wheel that ships with this Python (ensurepip), so no index is needed."""
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    wheels = sorted(bundled.glob("pip-*.whl"))
    if not wheels:
        raise RuntimeError(f"no bundled pip wheel in {bundled}")
    return wheels[0]


def fake_wheelhouse(out: Path, version: str) -> Path:
    project = fake_runtime_wheel(out.parent / f"project-{version}", version)
    pack_wheelhouse(out, project, {HOST_PYTHON: [bundled_pip()]})
    return out


def write_inventory(
    directory: Path,
    hosts: Mapping[str, Sequence[str]],
    group_vars: Mapping[str, object],
    host_vars: Mapping[str, Mapping[str, object]] | None = None,
) -> Path:
    """An inventory: ``mosaik_nodes`` with ``hosts`` (host -> its extra groups)."""
    children: dict[str, dict[str, dict[str, None]]] = {}
    for host, groups in hosts.items():
        for group in groups:
            children.setdefault(group, {"hosts": {}})["hosts"][host] = None
    document = {
        "all": {
            "children": {
                "mosaik_nodes": {
                    "hosts": {host: dict((host_vars or {}).get(host, {})) or None for host in hosts},
                    "vars": dict(group_vars),
                    "children": children,
                }
            }
        }
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hosts.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=True))
    return path


def fake_root_vars(root: Path, wheelhouse: Path) -> dict[str, object]:
    """Role variables that keep every path of each host under ``root/<host>``."""
    user, group = service_account()
    base = str(root) + "/{{ inventory_hostname }}"
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "mosaik_node_network": "deploy-test",
        "mosaik_node_wheelhouse": str(wheelhouse),
        "mosaik_node_python": sys.executable,
        "mosaik_node_user": user,
        "mosaik_node_group": group,
        "mosaik_node_create_user": False,
        "mosaik_node_manage_service": False,
        "mosaik_node_prefix": base + "/opt/mosaik",
        "mosaik_node_config_dir": base + "/etc/mosaik",
        "mosaik_node_data_dir": base + "/var/lib/mosaik",
        "mosaik_node_systemd_dir": base + "/etc/systemd/system",
    }


def write_password(path: Path) -> VaultPassword:
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return VaultPassword(PASSWORD.encode(), path)


def give_keys(
    inventory: Path,
    hosts: Sequence[str],
    seeds: Sequence[str],
    password: VaultPassword,
    seed: int = 0,
) -> dict[str, SecretKey]:
    """Keys for ``hosts`` in the inventory's group_vars/all (deterministic from ``seed``)."""
    keys = {host: SecretKey.from_seed(bytes([seed + i + 1]) * 32) for i, host in enumerate(hosts)}
    pending = iter(keys.values())
    groups = {"mosaik_nodes": list(hosts)}
    write_keys(
        inventory_from_groups(str(inventory), groups),
        seeds,
        default_keys_dir(inventory),
        password,
        generate=lambda: next(pending),
    )
    return keys
