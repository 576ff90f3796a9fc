"""Recipe validation: the shipped recipe loads; every mistake is named with its file and key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from images.errors import LockError, RecipeError
from images.lock import read_lock
from images.recipe import check_cmdline, load_recipe
from images.wheels import check_locked

RECIPE_DIR = Path(__file__).resolve().parents[2] / "images" / "debian-trixie"


def test_shipped_recipe_loads() -> None:
    recipe = load_recipe("debian-trixie")
    assert recipe.suite == "trixie"
    assert {"tdx_guest", "tsm", "configfs"} <= set(recipe.modules)
    assert recipe.node.udp_port == 7400 and recipe.node.http_port == 9100
    assert recipe.node.state_directory == "mosaik"
    assert recipe.lock_path == RECIPE_DIR / "packages.lock"
    assert load_recipe(RECIPE_DIR) == recipe


def test_shipped_lock_matches_the_recipe() -> None:
    recipe = load_recipe(RECIPE_DIR)
    lock = read_lock(recipe.lock_path)
    assert set(lock.include) == set(recipe.packages)
    names = {pin.name for pin in lock.debs}
    assert set(recipe.packages) <= names
    assert lock.kernel.name.startswith("linux-image-6.12")
    assert {"pip", "aioquic", "cryptography"} <= {pin.name for pin in lock.wheels}
    # A dependency added to pyproject.toml needs `mosaik image build --update-lock`.
    check_locked(RECIPE_DIR.parents[1], lock.wheels, recipe.lock_path)


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "recipe"
    shutil.copytree(RECIPE_DIR, target)
    return target


def _edit(directory: Path, old: str, new: str) -> None:
    path = directory / "recipe.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('suite = "trixie"', 'suite = "trixie"\nsweet = 1', "[image] unknown key 'sweet'"),
        ("[vm]", "[vmm]\nx = 1\n[vm]", "unknown table [vmm]"),
        ('"systemd", "udev", ', '"udev", ', "missing package 'systemd'"),
        ('"kmod", "python3"', '"kmod", "Python3"', "'Python3' is not a package name"),
        ("cpus = 2", 'cpus = "2"', "[vm] cpus: expected int"),
        ("cpus = 2", "", "[vm] missing key 'cpus'"),
        ('memory = "1G"', 'memory = "lots"', "is not a size"),
        (
            'load = ["tsm", "configfs"]',
            'load = ["tsm", "sev_guest"]',
            "'sev_guest' is not in modules",
        ),
        ('network = "mosaik"', 'network = "bad name"', "not a network name"),
        ('data_dir = "/var/lib/mosaik"', 'data_dir = "/srv/mosaik"', "under /var/lib/"),
        ('"mosaik-node.service"]', '"mosaik-node.service", "nope"]', "'nope' is not a unit name"),
        ('template = "hostname.j2"', 'template = "missing.j2"', "template 'missing.j2' not found"),
        ('path = "/etc/hostname"', 'path = "/etc/mosaik/node.env"', "rendered twice"),
        ("mode = 0o644", "mode = 0o17777", "is not a permission mode"),
    ],
)
def test_invalid_recipes_name_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    directory = _copy(tmp_path)
    _edit(directory, old, new)
    with pytest.raises(RecipeError) as info:
        load_recipe(directory)
    assert message in str(info.value)
    assert str(directory / "recipe.toml") in str(info.value)


@pytest.mark.parametrize(
    ("cmdline", "message"),
    [
        ("console=ttyS0 root=/dev/vda", "root= is not allowed"),
        ("console=ttyS0 rdinit=/bin/sh", "rdinit= is not allowed"),
        ('console=ttyS0 x="unbalanced', "unbalanced double quote"),
        ("console=ttyS0\nquiet", "printable ASCII"),
        ("console=ttyS0 mosaik.netwerk=a", "unknown key 'mosaik.netwerk'"),
        ("console=ttyS0 mosaik.tags=a/b", "tag 'a/b'"),
        ("x" * 2048, "exceed the kernel's 2047"),
    ],
)
def test_bad_kernel_command_lines(tmp_path: Path, cmdline: str, message: str) -> None:
    with pytest.raises(RecipeError, match="cmdline") as info:
        check_cmdline(cmdline, "recipe.toml: [kernel] cmdline")
    assert message in str(info.value)
    directory = _copy(tmp_path)
    _edit(
        directory,
        'cmdline = "console=ttyS0,115200 loglevel=4 panic=-1"',
        f"cmdline = {json.dumps(cmdline)}",
    )
    with pytest.raises(RecipeError, match=r"\[kernel\] cmdline"):
        load_recipe(directory)


def test_good_command_line_with_node_parameters_passes() -> None:
    check_cmdline('console=ttyS0 mosaik.network=orders mosaik.tags="a,b"', "cmdline")


def test_not_toml_and_not_a_recipe(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / "recipe.toml").write_text("[image\n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(directory)
    with pytest.raises(RecipeError, match=r"no recipe\.toml"):
        load_recipe(tmp_path / "nowhere")


def test_lock_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="--update-lock"):
        read_lock(tmp_path / "packages.lock")
    broken = tmp_path / "broken.lock"
    text = (RECIPE_DIR / "packages.lock").read_text()
    broken.write_text(text.replace('sha256 = "', 'sha256 = "zz', 1))
    with pytest.raises(LockError, match="not 64 hex digits"):
        read_lock(broken)
    broken.write_text(text.replace("format = 1", "format = 7"))
    with pytest.raises(LockError, match="format 7"):
        read_lock(broken)
