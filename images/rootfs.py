"""The root filesystem: bootstrap, node runtime, kernel modules, configuration, scrubbing.

Every step writes only what the recipe, the lock and the cache determine: mmdebstrap installs
from a local repository of the locked .debs with SOURCE_DATE_EPOCH set; pip installs the
locked wheels with ``--no-index --no-compile``; what remains host- or time-dependent (logs,
caches, bytecode, machine ids, the build's own paths) is removed by ``scrub``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from images.cpio import entries_from_tree, write_newc
from images.errors import CommandFailed, ImageError
from images.lock import Lock
from images.modules import module_closure
from images.recipe import Recipe
from images.render import RenderedFile
from images.tools import run

AUTOMOUNT_HOOK: Final = Path("/usr/share/mmdebstrap/hooks/file-mirror-automount")
GUEST_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STAGED_WHEELS: Final = "/tmp/mosaik-wheels"
# Files that record when or where the build ran; none of them is needed at boot.
_VOLATILE: Final = (
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/apt",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dbus/machine-id",
    "var/cache/apt",
    "var/lib/apt/lists",
    "etc/resolv.conf",
    "root/.cache",
    "etc/.pwd.lock",
)
_VOLATILE_GLOBS: Final = ("var/lib/dpkg/*-old", "var/cache/debconf/*-old", "tmp/*", "run/*")


def write_release(repo: Path, suite: str, epoch: int) -> None:
    """The flat repository's Release: mmdebstrap selects minbase by suite name."""
    packages = (repo / "Packages").read_bytes()
    date = datetime.fromtimestamp(epoch, UTC).strftime("%a, %d %b %Y %H:%M:%S UTC")
    (repo / "Release").write_text(
        f"Origin: mosaik-image-cache\nLabel: mosaik-image-cache\nSuite: {suite}\n"
        f"Codename: {suite}\nDate: {date}\nArchitectures: amd64 all\n"
        f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n"
    )


def bootstrap(recipe: Recipe, lock: Lock, repo: Path, rootfs: Path, log: Path) -> None:
    """mmdebstrap minbase + every locked package, from the local repository only."""
    argv: list[str | Path] = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        f"--hook-dir={AUTOMOUNT_HOOK}",
        f"--include={','.join(sorted(pin.name for pin in lock.debs))}",
    ]
    argv += [f"--dpkgopt=path-exclude={path}" for path in recipe.path_exclude]
    argv += [f"--dpkgopt=path-include={path}" for path in recipe.path_include]
    argv += [recipe.suite, rootfs, f"deb [trusted=yes] file://{repo} ./"]
    run(argv, "mmdebstrap", env=_build_env(recipe.source_date_epoch), log=log)
    _remove_mount_points(rootfs, repo)


def _build_env(epoch: int) -> dict[str, str]:
    return {
        "PATH": GUEST_PATH,
        "SOURCE_DATE_EPOCH": str(epoch),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HOME": "/root",
    }


def _remove_mount_points(rootfs: Path, repo: Path) -> None:
    """The automount hook leaves the (empty) directories it bind-mounted the repository on."""
    inside = rootfs / repo.relative_to("/")
    while inside != rootfs and inside.is_dir():
        try:
            inside.rmdir()
        except OSError:
            break
        inside = inside.parent


def chroot(rootfs: Path, argv: Sequence[str], what: str, epoch: int, log: Path) -> str:
    env = _build_env(epoch) | {"PYTHONDONTWRITEBYTECODE": "1", "PIP_CONFIG_FILE": "/dev/null"}
    return run(["chroot", rootfs, "/usr/bin/env", "-i", *_env_args(env), *argv], what, log=log)


def _env_args(env: dict[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in sorted(env.items())]


def install_runtime(recipe: Recipe, rootfs: Path, wheels: Path, log: Path) -> None:
    """A venv at ``node.venv`` holding the project and its locked dependencies (no bytecode)."""
    staged = rootfs / STAGED_WHEELS.lstrip("/")
    shutil.copytree(wheels, staged)
    pips = sorted(staged.glob("pip-*.whl"))
    if len(pips) != 1:
        raise ImageError(f"expected one pip wheel among the locked wheels, found {len(pips)}")
    venv = recipe.node.venv
    epoch = recipe.source_date_epoch
    try:
        chroot(
            rootfs,
            ["python3", "-m", "venv", "--without-pip", venv],
            "creating the venv",
            epoch,
            log,
        )
        chroot(
            rootfs,
            [
                f"{venv}/bin/python",
                f"{STAGED_WHEELS}/{pips[0].name}/pip",
                "install",
                "--no-index",
                f"--find-links={STAGED_WHEELS}",
                "--no-compile",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                "mosaik-py",
            ],
            "installing the node runtime (pip --no-index)",
            epoch,
            log,
        )
        chroot(rootfs, [f"{venv}/bin/mosaik", "--version"], "checking the node runtime", epoch, log)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def install_kernel(
    recipe: Recipe, kernel_deb: Path, rootfs: Path, work: Path, log: Path
) -> tuple[Path, str, int]:
    """Extract the kernel package; carry the chosen modules. (vmlinuz, version, module count)."""
    extracted = work / "kernel"
    run(["dpkg-deb", "--extract", kernel_deb, extracted], "extracting the kernel package", log=log)
    kernels = sorted((extracted / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise ImageError(f"{kernel_deb.name}: expected one boot/vmlinuz-*, found {len(kernels)}")
    version = kernels[0].name.removeprefix("vmlinuz-")
    tree = extracted / "usr/lib/modules" / version
    if not tree.is_dir():
        tree = extracted / "lib/modules" / version
    chosen = module_closure(recipe.modules, tree)
    target = rootfs / "usr/lib/modules" / version
    for path in chosen:
        destination = target / path.relative_to(tree)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        destination.chmod(0o644)
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if (tree / name).is_file():
            shutil.copyfile(tree / name, target / name)
            (target / name).chmod(0o644)
    chroot(rootfs, ["depmod", version], "depmod", recipe.source_date_epoch, log)
    return kernels[0], version, len(chosen)


def configure(recipe: Recipe, rootfs: Path, files: Sequence[RenderedFile], log: Path) -> None:
    """Lay the rendered files over the tree, make /init, enable and mask units."""
    for item in files:
        path = rootfs / item.path.lstrip("/")
        _make_dirs(path.parent, rootfs)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(item.content)
        path.chmod(item.mode)
    init = rootfs / "init"
    if init.is_symlink() or init.exists():
        init.unlink()
    init.symlink_to("usr/lib/systemd/systemd")
    # Every file has the same mtime, so /usr is never newer than these stamps: boot-time
    # rebuilds (ConditionNeedsUpdate=: ldconfig, hwdb, journal catalog) are skipped.
    nanoseconds = recipe.source_date_epoch * 1_000_000_000
    for stamp in ("etc/.updated", "var/.updated"):
        (rootfs / stamp).write_text(f"TIMESTAMP_NSEC={nanoseconds}\n")
        (rootfs / stamp).chmod(0o644)
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "etc/machine-id").chmod(0o444)
    (rootfs / "etc/apt/sources.list").write_text(recipe.mirror_line + "\n")
    epoch = recipe.source_date_epoch
    # Users now, not at boot: the stamps above keep systemd-sysusers.service from running.
    chroot(rootfs, ["systemd-sysusers"], "creating system users", epoch, log)
    env = ["env", "SYSTEMD_OFFLINE=1"]
    if recipe.enable:
        chroot(rootfs, [*env, "systemctl", "enable", *recipe.enable], "enabling units", epoch, log)
    if recipe.mask:
        chroot(rootfs, [*env, "systemctl", "mask", *recipe.mask], "masking units", epoch, log)


def _make_dirs(directory: Path, rootfs: Path) -> None:
    missing: list[Path] = []
    while not directory.exists() and directory != rootfs:
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir()
        path.chmod(0o755)


def scrub(recipe: Recipe, rootfs: Path) -> None:
    """Remove what records the build (logs, caches, bytecode) and the recipe's ``remove``."""
    targets = [rootfs / rel for rel in _VOLATILE]
    targets += [rootfs / path.lstrip("/") for path in recipe.remove]
    for pattern in _VOLATILE_GLOBS:
        targets += sorted(rootfs.glob(pattern))
    targets += sorted(rootfs.rglob("__pycache__"))
    targets += [p for p in rootfs.rglob("*.pyc") if p.is_file()]
    for target in targets:
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
    for directory in ("var/log/apt", "var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
        _make_dirs(rootfs / directory, rootfs)


def pack_initrd(rootfs: Path, out: Path, epoch: int, level: int) -> tuple[int, int]:
    """The tree as a deterministic newc archive compressed by zstd; (entries, cpio bytes)."""
    entries = entries_from_tree(rootfs)
    command = ["zstd", "-q", f"-{level}", "-T2", "--no-progress", "-f", "-o", str(out)]
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise ImageError(f"cannot run zstd: {exc.strerror}") from None
    assert process.stdin is not None and process.stderr is not None
    try:
        size = write_newc(entries, process.stdin, mtime=epoch)
    finally:
        process.stdin.close()
        errors = process.stderr.read().decode(errors="replace")
        returncode = process.wait()
    if returncode != 0:
        raise CommandFailed("zstd", returncode, errors)
    os.chmod(out, 0o644)
    return len(entries), size
