"""The plain-vm image recipe (the rollout's test VMs) and the builder's ``runtime = false``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from images.build import BuildOptions, plan
from images.errors import RecipeError
from images.lock import read_lock
from images.recipe import load_recipe
from images.render import render_recipe_files

RECIPES = Path(__file__).resolve().parents[2] / "images"
RUNTIME_STEPS = {"build the project wheel", "install the node runtime (venv)"}


def test_plain_vm_has_sshd_python_and_no_runtime() -> None:
    recipe = load_recipe("plain-vm")
    assert recipe.runtime is False
    assert {"openssh-server", "openssh-sftp-server", "python3"} <= set(recipe.packages)
    assert {"ssh.service", "ssh-hostkeys.service", "systemd-network-generator.service"} <= set(
        recipe.enable
    )
    # systemd imports the SSH key from SMBIOS through dmi_sysfs; host keys are made at boot.
    assert "dmi_sysfs" in recipe.modules
    assert "/etc/ssh/ssh_host_ed25519_key" in recipe.remove
    assert "net.ifnames=0" in recipe.cmdline.split()


def test_plain_vm_lock_pins_debs_but_no_wheels() -> None:
    recipe = load_recipe("plain-vm")
    lock = read_lock(recipe.lock_path)
    assert set(recipe.packages) <= {pin.name for pin in lock.debs}
    assert lock.wheels == () and lock.build_wheels == ()


def test_plain_vm_renders_no_key_and_key_only_logins() -> None:
    files = {
        item.path: item.content.decode() for item in render_recipe_files(load_recipe("plain-vm"))
    }
    sshd = files["/etc/ssh/sshd_config.d/50-plain-vm.conf"]
    assert "PasswordAuthentication no" in sshd and "PermitRootLogin prohibit-password" in sshd
    assert "ssh-keygen -q -t ed25519" in files["/etc/systemd/system/ssh-hostkeys.service"]
    assert not any("authorized_keys" in path for path in files)


@pytest.mark.parametrize(("name", "runtime"), [("plain-vm", False), ("debian-trixie", True)])
def test_build_plan_installs_the_runtime_only_when_asked(
    name: str, runtime: bool, tmp_path: Path
) -> None:
    options = BuildOptions(
        load_recipe(name), tmp_path / "out", tmp_path / "cache", work_root=tmp_path
    )
    steps, cleanup = plan(options)
    cleanup()
    titles = {step.title for step in steps}
    assert RUNTIME_STEPS & titles == (RUNTIME_STEPS if runtime else set())


def test_runtime_must_be_a_boolean(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe"
    shutil.copytree(RECIPES / "plain-vm", recipe)
    text = (recipe / "recipe.toml").read_text()
    (recipe / "recipe.toml").write_text(text.replace("runtime = false", 'runtime = "no"'))
    with pytest.raises(RecipeError, match=r"\[image\] runtime: expected bool"):
        load_recipe(recipe)


def test_runtime_defaults_to_installed(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe"
    shutil.copytree(RECIPES / "plain-vm", recipe)
    text = (recipe / "recipe.toml").read_text()
    (recipe / "recipe.toml").write_text(text.replace("runtime = false\n", ""))
    assert load_recipe(recipe).runtime is True
