"""``mosaik image build``: the build as a list of named steps run in order.

The caller (the CLI) runs each step and displays its title, result and duration; the steps
share a ``_Build`` holding the recipe, the lock and the paths. Nothing is installed on the
host: a missing tool fails the first step with the tool's name and package.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from images.apt import MINBASE, PrivateApt, fetch_debs, make_local_repository
from images.artifacts import (
    FIRMWARE,
    INITRD,
    KERNEL,
    write_launchers,
    write_manifest,
    write_measurements,
)
from images.errors import LockError
from images.lock import DebPin, Lock, WheelPin, read_lock, write_lock
from images.recipe import Recipe
from images.render import render_recipe_files
from images.rootfs import (
    bootstrap,
    configure,
    install_kernel,
    install_runtime,
    pack_initrd,
    scrub,
    write_release,
)
from images.tools import (
    BUILD_TOOLS,
    require_firmware,
    require_root,
    require_tools,
    sha256_file,
    tool_version,
)
from images.wheels import (
    build_project_wheel,
    check_locked,
    fetch_wheels,
    resolve_build_wheels,
    resolve_wheels,
    source_root,
    stage_wheels,
    target_flags,
)

DEFAULT_CACHE: Final = Path("~/.cache/mosaik-images")
GUEST_PYTHON: Final = {"trixie": "3.13", "bookworm": "3.11"}


@dataclass(frozen=True, slots=True)
class Step:
    """One build step: ``run`` returns a short summary of what it did."""

    title: str
    run: Callable[[], str]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    recipe: Recipe
    out: Path
    cache: Path
    update_lock: bool = False
    work_root: Path | None = None
    keep_work: bool = False
    # The source tree the runtime wheel is built from (default: this package's own).
    source: Path | None = None


@dataclass
class _Build:
    options: BuildOptions
    work: Path
    lock: Lock | None = None
    kernel_version: str = ""
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def recipe(self) -> Recipe:
        return self.options.recipe

    @property
    def debs(self) -> Path:
        return self.options.cache / "debs"

    @property
    def wheels(self) -> Path:
        return self.options.cache / "wheels"

    @property
    def build_wheels(self) -> Path:
        return self.options.cache / "build-wheels"

    @property
    def rootfs(self) -> Path:
        return self.work / "rootfs"

    @property
    def log(self) -> Path:
        return self.work / "build.log"

    def locked(self) -> Lock:
        if self.lock is None:
            self.lock = read_lock(self.recipe.lock_path)
        return self.lock

    def apt(self) -> PrivateApt:
        recipe = self.recipe
        return PrivateApt(self.work / "apt", recipe.mirror, recipe.suite, recipe.components)


def plan(options: BuildOptions) -> tuple[list[Step], Callable[[], None]]:
    """The steps of a build and a cleanup to call afterwards (it removes the work directory)."""
    options.out.mkdir(parents=True, exist_ok=True)
    if options.work_root is not None:
        options.work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mosaik-image-", dir=options.work_root))
    build = _Build(options, work)
    steps = [Step("check host tools", lambda: _check(build))]
    if options.update_lock:
        steps.append(Step("resolve and pin inputs (--update-lock)", lambda: _update_lock(build)))
    runtime = options.recipe.runtime
    steps += [
        Step("fetch pinned inputs into the cache", lambda: _fetch(build)),
        *([Step("build the project wheel", lambda: _project_wheel(build))] if runtime else []),
        Step("bootstrap the root filesystem (mmdebstrap)", lambda: _bootstrap(build)),
        *([Step("install the node runtime (venv)", lambda: _runtime(build))] if runtime else []),
        Step("carry the kernel and its modules", lambda: _kernel(build)),
        Step("configure units and guest files", lambda: _configure(build)),
        Step("scrub logs, caches and bytecode", lambda: _scrub(build)),
        Step("pack the initrd (cpio newc + zstd)", lambda: _pack(build)),
        Step("write firmware and launch scripts", lambda: _launchers(build)),
        Step("compute TDX measurements", lambda: write_measurements(build.recipe, options.out)),
        Step("write the manifest", lambda: _manifest(build)),
    ]

    def cleanup() -> None:
        if not options.keep_work:
            shutil.rmtree(work, ignore_errors=True)

    return steps, cleanup


def _check(build: _Build) -> str:
    require_root("mosaik image build")
    tools = require_tools(BUILD_TOOLS)
    require_firmware()
    return f"{len(tools)} tools, firmware present; work dir {build.work}"


def _python(recipe: Recipe) -> str:
    try:
        return GUEST_PYTHON[recipe.suite]
    except KeyError:
        raise LockError(f"suite {recipe.suite!r}: unknown guest Python version") from None


def _update_lock(build: _Build) -> str:
    recipe = build.recipe
    apt = build.apt()
    apt.update()
    rows = apt.resolve([*MINBASE, *recipe.packages])
    kernel_row = apt.kernel(recipe.kernel_package)
    apt.download([(n, v) for n, v, _ in [*rows, kernel_row]], _fresh(build.work / "debs"))
    debs = tuple(_deb_pin(build.work / "debs", row) for row in rows)
    kernel = _deb_pin(build.work / "debs", kernel_row)
    staging = build.work / "lock-wheels"
    python = _python(recipe)
    build_pins: list[WheelPin] = []
    wheel_pins: list[WheelPin] = []
    # A recipe without the runtime (a plain VM) pins no wheels: it installs none.
    if recipe.runtime:
        root = source_root(build.options.source)
        build_pins = resolve_build_wheels(root, staging / "build")
        project = build_project_wheel(
            root, staging / "build", staging / "project", recipe.source_date_epoch, build.work
        )
        wheel_pins = resolve_wheels(project, python, staging / "guest")
    for source, target in (
        (build.work / "debs", build.debs),
        (staging / "build", build.build_wheels),
        (staging / "guest", build.wheels),
    ):
        target.mkdir(parents=True, exist_ok=True)
        for path in source.iterdir() if source.is_dir() else ():
            if path.suffix in (".deb", ".whl") and not path.name.startswith("mosaik_py-"):
                shutil.copyfile(path, target / path.name)
    build.lock = Lock(
        suite=recipe.suite,
        mirror=recipe.mirror,
        include=recipe.packages,
        kernel=kernel,
        debs=debs,
        wheels=tuple(wheel_pins),
        build_wheels=tuple(build_pins),
        python=python,
    )
    write_lock(build.lock, recipe.lock_path)
    return f"{len(debs)} debs, kernel {kernel.name}, {len(wheel_pins)} wheels -> {recipe.lock_path}"


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _deb_pin(directory: Path, row: tuple[str, str, str]) -> DebPin:
    name, version, arch = row
    pin = DebPin(name, version, arch, "0" * 64)
    return DebPin(name, version, arch, sha256_file(directory / pin.filename))


def _fetch(build: _Build) -> str:
    lock = build.locked()
    recipe = build.recipe
    missing = sorted(set(recipe.packages) - {pin.name for pin in lock.debs})
    if lock.suite != recipe.suite or set(lock.include) != set(recipe.packages) or missing:
        raise LockError(
            f"{recipe.lock_path}: out of date with the recipe "
            f"(suite {lock.suite} vs {recipe.suite}; include {list(lock.include)} vs "
            f"{list(recipe.packages)}); run with --update-lock"
        )
    if recipe.runtime:
        check_locked(source_root(build.options.source), lock.wheels, recipe.lock_path)
    pins = [*lock.debs, lock.kernel]
    fetched = fetch_debs(pins, build.debs, build.apt())
    fetched += fetch_wheels(lock.wheels, build.wheels, target_flags(lock.python), "guest wheels")
    fetched += fetch_wheels(lock.build_wheels, build.build_wheels, None, "build wheels")
    total = len(pins) + len(lock.wheels) + len(lock.build_wheels)
    return f"{total} pinned inputs, {fetched} downloaded, cache {build.options.cache}"


def _project_wheel(build: _Build) -> str:
    staging = build.work / "build-wheels"
    stage_wheels(build.locked().build_wheels, build.build_wheels, staging)
    wheel = build_project_wheel(
        source_root(build.options.source),
        staging,
        build.work / "project",
        build.recipe.source_date_epoch,
        build.work,
    )
    build.facts["project_wheel"] = {"name": wheel.name, "sha256": sha256_file(wheel)}
    return f"{wheel.name} ({wheel.stat().st_size // 1024} KiB)"


def _bootstrap(build: _Build) -> str:
    lock = build.locked()
    repo = build.work / "repo"
    make_local_repository(lock.debs, build.debs, repo)
    write_release(repo, build.recipe.suite, build.recipe.source_date_epoch)
    bootstrap(build.recipe, lock, repo, build.rootfs, build.log)
    shutil.rmtree(repo)
    return f"{len(lock.debs)} packages from the local repository"


def _runtime(build: _Build) -> str:
    lock = build.locked()
    staged = build.work / "guest-wheels"
    project = build.work / "project"
    wheels = sorted(project.glob("mosaik_py-*.whl"))
    stage_wheels(lock.wheels, build.wheels, staged, wheels[0])
    install_runtime(build.recipe, build.rootfs, staged, build.log)
    return f"{len(lock.wheels) + 1} wheels into {build.recipe.node.venv}"


def _kernel(build: _Build) -> str:
    lock = build.locked()
    vmlinuz, version, count = install_kernel(
        build.recipe, build.debs / lock.kernel.filename, build.rootfs, build.work, build.log
    )
    shutil.copyfile(vmlinuz, build.options.out / KERNEL)
    (build.options.out / KERNEL).chmod(0o644)
    build.kernel_version = version
    return f"{version}: {count} modules for {', '.join(build.recipe.modules)}"


def _configure(build: _Build) -> str:
    files = render_recipe_files(build.recipe)
    configure(build.recipe, build.rootfs, files, build.log)
    return f"{len(files)} files, enabled {', '.join(build.recipe.enable)}"


def _scrub(build: _Build) -> str:
    scrub(build.recipe, build.rootfs)
    return "removed logs, apt lists, caches, bytecode, build paths"


def _pack(build: _Build) -> str:
    out = build.options.out / INITRD
    count, size = pack_initrd(
        build.rootfs, out, build.recipe.source_date_epoch, build.recipe.compression_level
    )
    build.facts["rootfs"] = {"entries": count, "cpio_bytes": size}
    return f"{count} entries, {size / 2**20:.1f} MiB cpio -> {out.stat().st_size / 2**20:.1f} MiB"


def _launchers(build: _Build) -> str:
    out = build.options.out
    firmware = require_firmware()
    shutil.copyfile(firmware, out / FIRMWARE)
    (out / FIRMWARE).chmod(0o644)
    write_launchers(build.recipe, out)
    return f"{FIRMWARE} from {firmware}, run-vm.sh, run-tdx.sh"


def _manifest(build: _Build) -> str:
    recipe = build.recipe
    lock = build.locked()
    facts: dict[str, object] = {
        "recipe": recipe.name,
        "image": recipe.image_name,
        "suite": recipe.suite,
        "source_date_epoch": recipe.source_date_epoch,
        "lock_sha256": sha256_file(recipe.lock_path),
        "kernel": {"package": lock.kernel.name, "version": lock.kernel.version},
        "kernel_release": build.kernel_version,
        "cmdline": recipe.cmdline,
        "vm": {"memory": recipe.memory, "cpus": recipe.cpus},
        "node": {"udp_port": recipe.node.udp_port, "http_port": recipe.node.http_port},
        "firmware_source": str(require_firmware()),
        "compressor": tool_version(["zstd", "--version"]),
        **build.facts,
    }
    manifest = write_manifest(build.options.out, facts)
    total = sum(int(a["size"]) for a in manifest["artifacts"].values())
    return f"{len(manifest['artifacts'])} artifacts, {total / 2**20:.1f} MiB"
