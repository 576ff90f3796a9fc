"""The real site.yml, run by ansible-playbook with ``connection: local`` against fake roots.

Every host's paths point under ``<tmp>/root/<host>``; systemd is not touched
(``mosaik_node_manage_service: false``), the runtime is a tiny stand-in wheel installed for real
into a venv with ``pip --no-index`` from the wheelhouse.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")

from node.primitives.keys import SecretKey
from tests.deploy.fakes import (
    SITE,
    fake_image,
    fake_root_vars,
    fake_wheelhouse,
    give_keys,
    make_roots,
    recap,
    run_site,
    service_account,
    tdx_fake_root_vars,
    tree,
    write_inventory,
    write_password,
)

NODES = {"n1": ["seed", "matcher"], "n2": ["sensor"]}
TDX_HOSTS = {"t1": ["matcher"]}
RUN_ARGS = ["--counter-group", "two words"]


@dataclass
class World:
    tmp: Path
    root: Path
    inventory: Path
    password_file: Path
    keys: dict[str, SecretKey]
    first: tuple[int, str]
    second: tuple[int, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("rollout")
    root = tmp / "root"
    wheelhouse = fake_wheelhouse(tmp / "wheelhouse", "0.0.1")
    tdx_vars = {**tdx_fake_root_vars(root, fake_image(tmp / "image")), "mosaik_node_network": "t"}
    node_vars = {**fake_root_vars(root, wheelhouse), "mosaik_node_run_args": RUN_ARGS}
    inventory = write_inventory(tmp / "inventory", NODES, node_vars, TDX_HOSTS, tdx_vars)
    make_roots(root, [*NODES, *TDX_HOSTS])
    password = write_password(tmp / "vault-password")
    assert password.file is not None
    keys = give_keys(inventory, list(NODES), ["n1"], password)
    first = run_site(inventory, password.file)
    second = run_site(inventory, password.file, diff=True, verbosity=3)
    yield World(tmp, root, inventory, password.file, keys, first, second)


def test_site_passes_the_syntax_check(world: World) -> None:
    argv = [sys.executable, "-m", "ansible", "playbook", "--syntax-check"]
    result = subprocess.run(
        [*argv, "-i", str(world.inventory), str(SITE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_first_run_installs_every_host(world: World) -> None:
    code, output = world.first
    assert code == 0, output[-4000:]
    counters = recap(output)
    assert set(counters) == {*NODES, *TDX_HOSTS}
    assert all(c["failed"] == 0 and c["changed"] > 0 for c in counters.values()), counters


def test_second_run_changes_nothing(world: World) -> None:
    code, output = world.second
    assert code == 0, output[-4000:]
    assert {host: c["changed"] for host, c in recap(output).items()} == dict.fromkeys(
        [*NODES, *TDX_HOSTS], 0
    )


def test_secret_keys_never_appear_in_output(world: World) -> None:
    for _, output in (world.first, world.second):  # the second ran with -vvv --diff
        for key in world.keys.values():
            assert key.seed.hex() not in output
    assert "the output has been hidden" in world.second[1]


def test_key_file_is_private_and_holds_the_vault_key(world: World) -> None:
    user, group = service_account()
    for host, key in world.keys.items():
        path = world.root / host / "etc/mosaik/node.key"
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert (path.owner(), path.group()) == (user, group)
        assert SecretKey.from_file(path).peer_id == key.peer_id


def test_directories_and_environment_file_modes(world: World) -> None:
    user, _ = service_account()
    etc = world.root / "n1/etc/mosaik"
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    assert stat.S_IMODE((etc / "node.env").stat().st_mode) == 0o600
    assert (etc / "node.env").owner() == "root"
    data = world.root / "n1/var/lib/mosaik"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700 and data.owner() == user


def _environment(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs if not key.startswith("#")}


def test_environment_has_network_seeds_and_group_tags(world: World) -> None:
    seed = world.keys["n1"].peer_id.hex()
    n1 = _environment(world.root / "n1/etc/mosaik/node.env")
    n2 = _environment(world.root / "n2/etc/mosaik/node.env")
    assert n1["MOSAIK_NETWORK"] == n2["MOSAIK_NETWORK"] == "deploy-test"
    assert n1["MOSAIK_TAGS"] == "matcher seed" and n2["MOSAIK_TAGS"] == "sensor"
    # A seed does not dial itself; everyone else dials the seed on its port.
    assert "MOSAIK_BOOTSTRAP" not in n1
    assert n2["MOSAIK_BOOTSTRAP"] == f"{seed}@n1:7400"
    # Each node advertises the address the inventory reaches it on, not what it binds.
    assert n1["MOSAIK_ADVERTISE"] == "n1:7400" and n2["MOSAIK_ADVERTISE"] == "n2:7400"
    assert n2["MOSAIK_SECRET_FILE"] == str(world.root / "n2/etc/mosaik/node.key")
    assert n2["MOSAIK_DATA_DIR"] == str(world.root / "n2/var/lib/mosaik")


def test_unit_is_hardened(world: World) -> None:
    unit = (world.root / "n1/etc/systemd/system/mosaik-node.service").read_text()
    user, group = service_account()
    for line in (
        f"User={user}",
        f"Group={group}",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={world.root / 'n1/var/lib/mosaik'}",
        "PrivateTmp=yes",
        "Restart=on-failure",
        f"EnvironmentFile={world.root / 'n1/etc/mosaik/node.env'}",
        f"ExecStart={world.root / 'n1/opt/mosaik/venv'}/bin/mosaik node run "
        "--counter-group 'two words'",
    ):
        assert line in unit.splitlines(), line


def test_unit_verifies_with_systemd_analyze(world: World) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = world.root / "n1/etc/systemd/system/mosaik-node.service"
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_runtime_installed_from_the_wheelhouse(world: World) -> None:
    venv = world.root / "n2/opt/mosaik/venv"
    result = subprocess.run([venv / "bin/mosaik"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "mosaik, version 0.0.1"


def test_tdx_host_gets_image_config_drive_and_unit(world: World) -> None:
    td = world.root / "t1/var/lib/mosaik-td"
    assert sorted(p.name for p in (td / "image").iterdir()) == sorted(
        ["OVMF.fd", "initrd.img", "manifest.json", "measurements.json", "run-tdx.sh", "vmlinuz"]
    )
    drive = (td / "config-drive.txt").read_text().splitlines()
    assert "mosaik.network=t" in drive
    assert "mosaik.tags=matcher" in drive
    assert f"mosaik.bootstrap={world.keys['n1'].peer_id.hex()}@n1:7400" in drive
    unit = (world.root / "t1/etc/systemd/system/mosaik-td.service").read_text()
    assert f"ExecStart=/bin/sh {td}/image/run-tdx.sh" in unit
    assert f"Environment=MOSAIK_CONFIG_DRIVE={td}/config-drive.txt" in unit


def test_upgrade_reinstalls_the_runtime_and_drops_the_old_wheels(world: World) -> None:
    newer = fake_wheelhouse(world.tmp / "wheelhouse-2", "0.0.2")
    code, output = run_site(world.inventory, world.password_file, f"mosaik_node_wheelhouse={newer}")
    assert code == 0, output[-4000:]
    for host in NODES:
        venv = world.root / host / "opt/mosaik/venv"
        result = subprocess.run([venv / "bin/mosaik"], capture_output=True, text=True, check=True)
        assert result.stdout.strip() == "mosaik, version 0.0.2"
        wheelhouses = list((world.root / host / "opt/mosaik/wheelhouse").iterdir())
        assert len(wheelhouses) == 1, wheelhouses


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    wheelhouse = fake_wheelhouse(tmp_path / "wheelhouse", "0.0.1")
    inventory = write_inventory(
        tmp_path / "inventory", {"c1": ["seed"]}, fake_root_vars(root, wheelhouse)
    )
    make_roots(root, ["c1"])
    password = write_password(tmp_path / "vault-password")
    keys = give_keys(inventory, ["c1"], ["c1"], password)
    before = tree(root)
    code, output = run_site(inventory, password.file, check=True, diff=True)
    assert code == 0, output[-4000:]
    assert recap(output)["c1"]["changed"] > 0
    assert tree(root) == before
    assert keys["c1"].seed.hex() not in output
