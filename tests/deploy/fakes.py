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
import re
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from node.deploy.inventory import inventory_from_groups
from node.deploy.keys import default_keys_dir, write_keys
from node.deploy.playbook import PlaybookRun, playbook_command
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
    nodes: Mapping[str, Sequence[str]],
    node_vars: Mapping[str, object],
    tdx_hosts: Mapping[str, Sequence[str]] | None = None,
    tdx_vars: Mapping[str, object] | None = None,
) -> Path:
    """``hosts.yml``: ``mosaik_nodes`` (and ``mosaik_tdx_hosts``), host -> its other groups."""
    document: dict[str, object] = {
        "mosaik_nodes": _group(nodes, node_vars),
        **({"mosaik_tdx_hosts": _group(tdx_hosts, tdx_vars or {})} if tdx_hosts else {}),
    }
    extra: dict[str, dict[str, dict[str, None]]] = {}
    for members in (nodes, tdx_hosts or {}):
        for host, groups in members.items():
            for group in groups:
                extra.setdefault(group, {"hosts": {}})["hosts"][host] = None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {**document, **extra}}}, sort_keys=True))
    return path


def _group(hosts: Mapping[str, Sequence[str]], variables: Mapping[str, object]) -> object:
    return {"hosts": dict.fromkeys(hosts), "vars": dict(variables)}


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


def fake_image(directory: Path) -> Path:
    """Stand-ins for the artifacts of `mosaik image build` (the TDX play only copies them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("vmlinuz", "initrd.img", "OVMF.fd", "measurements.json", "manifest.json"):
        (directory / name).write_text(f"fake {name}\n")
    (directory / "run-tdx.sh").write_text("#!/bin/sh\nexit 0\n")
    return directory


def tdx_fake_root_vars(root: Path, image: Path) -> dict[str, object]:
    user, group = service_account()
    base = str(root) + "/{{ inventory_hostname }}"
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "mosaik_tdx_host_image": str(image),
        "mosaik_tdx_host_user": user,
        "mosaik_tdx_host_group": group,
        "mosaik_tdx_host_create_user": False,
        "mosaik_tdx_host_manage_service": False,
        "mosaik_tdx_host_require_tdx": False,
        "mosaik_tdx_host_dir": base + "/var/lib/mosaik-td",
        "mosaik_tdx_host_systemd_dir": base + "/etc/systemd/system",
    }


def make_roots(root: Path, hosts: Sequence[str]) -> None:
    """What every host has before the role: /etc/systemd/system."""
    for host in hosts:
        (root / host / "etc/systemd/system").mkdir(parents=True, exist_ok=True)


def run_site(
    inventory: Path,
    password_file: Path | None,
    *args: str,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    limit: str | None = None,
) -> tuple[int, str]:
    """ansible-playbook on site.yml as `mosaik deploy` runs it: (exit code, output)."""
    run = PlaybookRun(
        inventory=inventory,
        playbook=SITE,
        check=check,
        diff=diff,
        limit=limit,
        vault_password_file=password_file,
        extra_vars=("mosaik_node_serial=3", *args),
        verbosity=verbosity,
    )
    argv, env = playbook_command(run)
    env["ANSIBLE_NOCOLOR"] = "1"
    result = subprocess.run(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    return result.returncode, result.stdout


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host."""
    counters: dict[str, dict[str, int]] = {}
    for host, rest in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        counters[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", rest)}
    return counters


def tree(root: Path) -> list[str]:
    """Every path under ``root`` (to show that nothing was created)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
