"""Builder pieces that need no root: lock files, module selection, manifests, VM commands."""

from __future__ import annotations

import json
import lzma
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import images
from images.artifacts import ARTIFACTS, MANIFEST, verify_artifacts, write_manifest
from images.build import BuildOptions, plan
from images.cli import image_group
from images.errors import ArtifactError, ImageError, LockError, ToolMissing
from images.lock import DebPin, Lock, WheelPin, read_lock, write_lock
from images.modules import module_closure, module_name
from images.recipe import load_recipe
from images.tools import require_tools
from images.vm import VmOptions, vm_command
from images.wheels import check_locked, declared_dependencies

SHA = "0123456789abcdef" * 4


def test_lock_round_trips_and_names_epoch_files(tmp_path: Path) -> None:
    lock = Lock(
        suite="trixie",
        mirror="http://deb.debian.org/debian",
        include=("systemd", "python3"),
        kernel=DebPin("linux-image-6.12.1-amd64", "6.12.1-1", "amd64", SHA),
        debs=(
            DebPin("zlib1g", "1:1.3.1", "amd64", SHA),
            DebPin("bash", "5.2-2", "amd64", SHA),
        ),
        wheels=(WheelPin("pip", "26.3", "pip-26.3-py3-none-any.whl", SHA),),
        build_wheels=(WheelPin("wheel", "0.48.0", "wheel-0.48.0-py3-none-any.whl", SHA),),
        python="3.13",
    )
    path = tmp_path / "packages.lock"
    write_lock(lock, path)
    again = read_lock(path)
    assert again.debs == tuple(sorted(lock.debs))
    assert again.kernel == lock.kernel and again.wheels == lock.wheels
    assert again.to_toml() == path.read_text()
    assert DebPin("zlib1g", "1:1.3.1", "amd64", SHA).filename == "zlib1g_1%3a1.3.1_amd64.deb"


def _module(path: Path, depends: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    modinfo = b"license=GPL\0" + f"depends={depends}\0".encode() + b"name=x\0"
    path.write_bytes(lzma.compress(b"\x7fELF....." + modinfo + b"...."))


def test_module_closure_follows_modinfo_depends(tmp_path: Path) -> None:
    tree = tmp_path / "6.12.0"
    _module(tree / "kernel/drivers/virt/coco/tdx-guest/tdx-guest.ko.xz", "tsm")
    _module(tree / "kernel/drivers/virt/coco/tsm.ko.xz", "")
    _module(tree / "kernel/drivers/net/virtio_net.ko.xz", "net_failover")
    _module(tree / "kernel/drivers/net/net_failover.ko.xz", "failover")
    _module(tree / "kernel/net/core/failover.ko.xz", "")
    _module(tree / "kernel/sound/unrelated.ko.xz", "")
    (tree / "modules.builtin").write_text("kernel/fs/configfs/configfs.ko\n")
    chosen = module_closure(["tdx-guest", "virtio_net", "configfs"], tree)
    assert [module_name(p.name) for p in chosen] == [
        "net_failover",
        "virtio_net",
        "tdx_guest",
        "tsm",
        "failover",
    ]
    with pytest.raises(ImageError, match="'sev_guest' is neither built in nor shipped"):
        module_closure(["sev_guest"], tree)


def _image_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "image"
    directory.mkdir()
    for name in ARTIFACTS:
        (directory / name).write_bytes(name.encode())
    facts = {"recipe": "test", "cmdline": "console=ttyS0", "vm": {"memory": "1G", "cpus": 2}}
    write_manifest(directory, facts)
    return directory


def test_manifest_lists_every_artifact_and_detects_tampering(tmp_path: Path) -> None:
    directory = _image_dir(tmp_path)
    manifest = json.loads((directory / MANIFEST).read_text())
    assert sorted(manifest["artifacts"]) == sorted(ARTIFACTS)
    assert verify_artifacts(directory) == []
    (directory / "initrd.img").write_bytes(b"tampered")
    assert verify_artifacts(directory) == ["initrd.img: sha256 differs from the manifest"]
    (directory / "vmlinuz").unlink()
    assert "vmlinuz: missing" in verify_artifacts(directory)
    with pytest.raises(ArtifactError, match="artifact missing"):
        write_manifest(directory, {})


def test_vm_command_carries_options_in_the_environment(tmp_path: Path) -> None:
    directory = _image_dir(tmp_path)
    config = tmp_path / "config.txt"
    config.write_text("mosaik.network=demo\n")
    try:
        argv, env = vm_command(
            directory,
            VmOptions(tcg=True, http_port=19100, append="mosaik.tags=a", config_drive=config),
        )
    except ToolMissing:
        pytest.skip("qemu-system-x86_64 not installed")
    assert argv == ["/bin/sh", str(directory / "run-vm.sh")]
    assert env["MOSAIK_ACCEL"] == "tcg"
    assert env["MOSAIK_HTTP_PORT"] == "19100"
    assert env["MOSAIK_APPEND"] == "mosaik.tags=a"
    assert env["MOSAIK_CONFIG_DRIVE"] == str(config.resolve())
    with pytest.raises(ArtifactError, match="no manifest"):
        vm_command(tmp_path, VmOptions())


def test_missing_tool_names_the_tool_and_its_package() -> None:
    with pytest.raises(ToolMissing) as info:
        require_tools({"mosaik-no-such-tool": ("mosaik-pkg", "do the impossible")})
    message = str(info.value)
    assert "'mosaik-no-such-tool'" in message and "mosaik-pkg" in message
    assert "make image-deps" in message


def test_build_refuses_to_run_without_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    options = BuildOptions(load_recipe("debian-trixie"), tmp_path / "out", tmp_path / "cache")
    steps, cleanup = plan(options)
    try:
        assert steps[0].title == "check host tools"
        with pytest.raises(ImageError, match="must run as root"):
            steps[0].run()
    finally:
        cleanup()
    assert [step.title for step in steps][-3:] == [
        "write firmware and launch scripts",
        "compute TDX measurements",
        "write the manifest",
    ]


def test_cli_reports_recipe_and_manifest_errors_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(image_group, ["build", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "no recipe.toml" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(image_group, ["measure", str(tmp_path)])
    assert result.exit_code == 1
    assert "no manifest" in result.output


def test_cli_measure_names_the_bad_input(tmp_path: Path) -> None:
    directory = _image_dir(tmp_path)
    result = CliRunner().invoke(image_group, ["measure", str(directory)])
    # The fake firmware is no TDVF: the measurement library names the file and the problem.
    assert result.exit_code == 1
    assert "OVMF.fd" in result.output
    assert "Traceback" not in result.output
    manifest = json.loads((directory / MANIFEST).read_text())
    del manifest["vm"]
    (directory / MANIFEST).write_text(json.dumps(manifest))
    result = CliRunner().invoke(image_group, ["measure", str(directory)])
    assert result.exit_code == 1
    assert "no valid boot setting 'vm'" in result.output


def test_public_names_are_pinned() -> None:
    assert sorted(images.__all__) == sorted(
        [
            "ARTIFACTS",
            "DEFAULT_CACHE",
            "MANIFEST",
            "ArtifactError",
            "BuildOptions",
            "CacheError",
            "CommandFailed",
            "CpioEntry",
            "CpioError",
            "CpioMember",
            "DebPin",
            "FileSpec",
            "ImageError",
            "Lock",
            "LockError",
            "NodeSettings",
            "Recipe",
            "RecipeError",
            "RenderedFile",
            "Step",
            "ToolMissing",
            "VmOptions",
            "WheelPin",
            "check_cmdline",
            "entries_from_tree",
            "load_recipe",
            "measure_artifacts",
            "plan",
            "read_lock",
            "read_manifest",
            "read_newc",
            "render_recipe_files",
            "verify_artifacts",
            "vm_command",
            "write_lock",
            "write_newc",
        ]
    )
    for name in images.__all__:
        assert getattr(images, name) is not None
    for error in ("ArtifactError", "CacheError", "CpioError", "LockError", "RecipeError"):
        assert issubclass(getattr(images, error), ImageError)


def test_lock_without_a_declared_dependency_asks_for_update_lock(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["aioquic>=1.2", "pyjwt[crypto]>=2.8", '
        '"Zero_Conf>=0.130"]\n'
    )
    assert declared_dependencies(tmp_path) == ["aioquic", "pyjwt", "zero-conf"]
    pins = [WheelPin("aioquic", "1.7.2", "a.whl", SHA), WheelPin("pyjwt", "2.1", "p.whl", SHA)]
    with pytest.raises(LockError, match=r"no wheel for zero-conf; run with --update-lock"):
        check_locked(tmp_path, pins, tmp_path / "packages.lock")
    check_locked(tmp_path, [*pins, WheelPin("zero-conf", "1", "z.whl", SHA)], tmp_path / "l")
