"""Templates render to valid systemd units, env files and POSIX shell launch scripts."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from images.artifacts import RUN_TDX, RUN_VM, write_launchers
from images.recipe import load_recipe
from images.render import GUEST_CONFIG_PATH, RenderedFile, render_recipe_files

# Executables that exist in the image but not on the machine running the tests.
_IN_IMAGE_ONLY = re.compile(r"Command (\S+) is not executable: No such file or directory")


@pytest.fixture(scope="module")
def rendered() -> dict[str, RenderedFile]:
    return {f.path: f for f in render_recipe_files(load_recipe("debian-trixie"))}


def _units(rendered: dict[str, RenderedFile], directory: Path) -> list[Path]:
    paths = []
    for path, item in rendered.items():
        if path.endswith(".service"):
            target = directory / Path(path).name
            target.write_bytes(item.content)
            paths.append(target)
    return sorted(paths)


def test_node_unit_is_hardened_and_configured_from_the_environment(
    rendered: dict[str, RenderedFile],
) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(rendered["/etc/systemd/system/mosaik-node.service"].content.decode())
    service = unit["Service"]
    assert service["User"] == "mosaik"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert service["Restart"] == "on-failure"
    assert service["ExecStart"] == "/opt/mosaik/venv/bin/mosaik node run"
    text = rendered["/etc/systemd/system/mosaik-node.service"].content.decode()
    assert "ReadWritePaths=/var/lib/mosaik\n" in text
    assert unit["Unit"]["Requires"] == "mosaik-config.service"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_env_defaults_and_guest_script(rendered: dict[str, RenderedFile]) -> None:
    env = rendered["/etc/mosaik/node.env"].content.decode()
    values = dict(
        line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#")
    )
    assert values["MOSAIK_NETWORK"] == '"mosaik"'
    assert values["MOSAIK_SECRET_FILE"] == '"/var/lib/mosaik/node.key"'
    assert values["MOSAIK_METRICS_ADDR"] == '"0.0.0.0:9100"'
    script = rendered[GUEST_CONFIG_PATH]
    assert script.mode == 0o755 and script.content.startswith(b"#!/usr/bin/python3\n")
    modules = rendered["/etc/modules-load.d/mosaik.conf"].content.decode().split()
    assert [m for m in modules if not m.startswith("#") and "generated" not in m][-2:] == [
        "tsm",
        "configfs",
    ]


def test_units_pass_systemd_analyze_verify(
    rendered: dict[str, RenderedFile], tmp_path: Path
) -> None:
    units = _units(rendered, tmp_path)
    if shutil.which("systemd-analyze") is None:
        print("systemd-analyze not installed: checked unit structure only")
        for path in units:
            parser = configparser.ConfigParser(strict=True, interpolation=None)
            parser.read_string(path.read_text())
            assert {"Unit", "Service", "Install"} <= set(parser.sections())
        return
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        check=False,
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not _IN_IMAGE_ONLY.search(line)
    ]
    assert complaints == [], "\n".join(complaints)


def test_verify_would_catch_a_misspelled_directive(
    rendered: dict[str, RenderedFile], tmp_path: Path
) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    units = _units(rendered, tmp_path)
    node = tmp_path / "mosaik-node.service"
    node.write_text(node.read_text().replace("NoNewPrivileges=", "NoNewPrivilegez="))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "NoNewPrivilegez" in result.stdout + result.stderr


def test_launch_scripts_are_valid_shell_with_the_tdx_machine(tmp_path: Path) -> None:
    recipe = load_recipe("debian-trixie")
    write_launchers(recipe, tmp_path)
    for name in (RUN_VM, RUN_TDX):
        script = tmp_path / name
        assert script.stat().st_mode & 0o111
        subprocess.run(["sh", "-n", str(script)], check=True)
    tdx = (tmp_path / RUN_TDX).read_text()
    assert "-machine q35,kernel-irqchip=split,confidential-guest-support=tdx0" in tdx
    assert '"qom-type":"tdx-guest","id":"tdx0"' in tdx
    assert '"quote-generation-socket":{"type":"vsock","cid":"2","port":"4050"}' in tdx
    assert "cmdline='console=ttyS0,115200 loglevel=4 panic=-1'" in tdx
    vm = (tmp_path / RUN_VM).read_text()
    assert "hostfwd=udp::${MOSAIK_UDP_PORT:-7400}-:7400" in vm
    assert "hostfwd=tcp::${MOSAIK_HTTP_PORT:-9100}-:9100" in vm
    assert "tdx" not in vm.replace("TDX", "")


def test_launch_script_runs_qemu_with_the_artifacts(tmp_path: Path) -> None:
    recipe = load_recipe("debian-trixie")
    write_launchers(recipe, tmp_path)
    fake = tmp_path / "fake-qemu"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "QEMU": str(fake),
        "MOSAIK_ACCEL": "tcg",
        "MOSAIK_APPEND": "mosaik.network=demo",
        "MOSAIK_HTTP_PORT": "19100",
        "MOSAIK_CONFIG_DRIVE": "/tmp/config.txt",
    }
    argv = subprocess.run(
        ["sh", str(tmp_path / RUN_VM)], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert argv[argv.index("-cpu") + 1] == "max"
    assert argv[argv.index("-kernel") + 1] == f"{tmp_path}/vmlinuz"
    assert argv[argv.index("-bios") + 1] == f"{tmp_path}/OVMF.fd"
    assert argv[argv.index("-append") + 1].endswith("panic=-1 mosaik.network=demo")
    assert "hostfwd=tcp::19100-:9100" in argv[argv.index("-netdev") + 1]
    assert "virtio-blk-pci,drive=config,serial=mosaik-config" in argv
