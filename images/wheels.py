"""Python wheels: the project's own (built from this source tree) and its pinned dependencies.

The guest runs Debian's CPython (``Lock.python``, 3.13 on trixie), not the host's, so the
dependencies are fetched as binary wheels for that interpreter (``pip download
--python-version``) rather than built by the host's pip. The project wheel is pure Python and
is built offline with the locked build backend (``--no-index``) and SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Final

from images.errors import CacheError, CommandFailed, ImageError, LockError
from images.lock import WheelPin
from images.tools import run, sha256_file

PROJECT: Final = "mosaik-py"
# Binary wheels the guest's glibc (2.41 on trixie) accepts, newest first.
PLATFORMS: Final = (
    "manylinux_2_39_x86_64",
    "manylinux_2_34_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)
_SOURCES: Final = ("pyproject.toml", "README.md")
_REQUIREMENT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def source_root(root: Path | None = None) -> Path:
    """The source tree to build the runtime from (default: the one this package lives in)."""
    root = root if root is not None else Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise ImageError(f"{root}: no pyproject.toml; building the image needs the source tree")
    return root


def copy_source(root: Path, dest: Path) -> Path:
    """A clean copy of what the project wheel is built from (no bytecode, no build dirs)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in _SOURCES:
        shutil.copy2(root / name, dest / name)
    for package in _packages(root):
        shutil.copytree(
            root / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return dest


def _pip(*args: str | Path) -> list[str | Path]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def _offline_env(epoch: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SOURCE_DATE_EPOCH=str(epoch), PIP_CONFIG_FILE=os.devnull, PYTHONHASHSEED="0")
    return env


def target_flags(python: str) -> list[str]:
    digits = python.replace(".", "")
    flags = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    flags += ["--abi", f"cp{digits}", "--abi", "abi3", "--abi", "none"]
    for platform in PLATFORMS:
        flags += ["--platform", platform]
    return flags


def build_project_wheel(root: Path, build_wheels: Path, out: Path, epoch: int, work: Path) -> Path:
    """``pip wheel`` of the project from a clean copy of its sources, offline; the wheel path."""
    copy = copy_source(root, work / "source")
    out.mkdir(parents=True, exist_ok=True)
    run(
        _pip("wheel", "--no-deps", "--no-index", "--find-links", build_wheels, "-w", out, copy),
        "building the project wheel",
        env=_offline_env(epoch),
        log=work / "pip.log",
    )
    wheels = sorted(out.glob("mosaik_py-*.whl"))
    if len(wheels) != 1:
        raise ImageError(f"expected one mosaik_py wheel in {out}, found {len(wheels)}")
    return wheels[0]


def _packages(root: Path) -> list[str]:
    """Top-level packages named by pyproject's setuptools ``include`` patterns."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    names = [p.rstrip("*") for p in patterns]
    return [name for name in names if (root / name / "__init__.py").is_file()]


def resolve_wheels(project_wheel: Path, python: str, dest: Path) -> list[WheelPin]:
    """Download the project's dependency closure (and pip) for the guest's CPython.

    Versions follow the host environment the tests ran in, when it has the package.
    """
    constraints = dest / "constraints.txt"
    dest.mkdir(parents=True, exist_ok=True)
    constraints.write_text(_host_constraints())
    run(
        _pip(
            "download", *target_flags(python), "-c", constraints, "-d", dest, project_wheel, "pip"
        ),
        "downloading the guest's wheels",
    )
    return [
        _pin(path) for path in sorted(dest.glob("*.whl")) if not path.name.startswith("mosaik_py-")
    ]


def resolve_build_wheels(root: Path, dest: Path) -> list[WheelPin]:
    """Download the project's build backend (pyproject ``build-system.requires``) for the host."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    requires = config["build-system"]["requires"]
    dest.mkdir(parents=True, exist_ok=True)
    run(_pip("download", "--only-binary=:all:", "-d", dest, *requires), "downloading build wheels")
    return [_pin(path) for path in sorted(dest.glob("*.whl"))]


def _host_constraints() -> str:
    pins = {
        dist.metadata["Name"].lower(): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() != PROJECT
    }
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def declared_dependencies(root: Path) -> list[str]:
    """Normalised names of the project's ``[project] dependencies`` (extras dropped)."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    names = []
    for requirement in config["project"]["dependencies"]:
        match = _REQUIREMENT.match(requirement)
        if match is not None:
            names.append(_normalise(match.group(0)))
    return sorted(names)


def check_locked(root: Path, pins: Sequence[WheelPin], lock_path: Path) -> None:
    """``LockError`` if the project declares a dependency the lock has no wheel for."""
    locked = {_normalise(pin.name) for pin in pins}
    missing = [name for name in declared_dependencies(root) if name not in locked]
    if missing:
        raise LockError(
            f"{lock_path}: out of date with {root / 'pyproject.toml'}: no wheel for "
            f"{', '.join(missing)}; run with --update-lock"
        )


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pin(path: Path) -> WheelPin:
    parts = path.name.split("-")
    if len(parts) < 5:
        raise LockError(f"{path.name}: not a wheel file name")
    name = _normalise(parts[0])
    return WheelPin(name, parts[1], path.name, sha256_file(path))


def fetch_wheels(
    pins: Sequence[WheelPin], cache: Path, target: Sequence[str] | None, what: str
) -> int:
    """Ensure every pinned wheel is in ``cache`` with its sha256; return how many were fetched.

    ``target`` is the interpreter the wheels are for (``--python-version`` ...) or ``None``
    for the host's.
    """
    cache.mkdir(parents=True, exist_ok=True)
    missing = [pin for pin in pins if not (cache / pin.filename).is_file()]
    for pin in missing:
        try:
            run(
                _pip(
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    *(target or ()),
                    "-d",
                    cache,
                    f"{pin.name}=={pin.version}",
                ),
                f"downloading {pin.filename}",
            )
        except CommandFailed as exc:
            raise CacheError(f"{what}: cannot fetch {pin.filename}: {exc}") from None
    for pin in pins:
        path = cache / pin.filename
        if not path.is_file():
            raise CacheError(f"{what}: {pin.filename} not in {cache} after download")
        actual = sha256_file(path)
        if actual != pin.sha256:
            raise CacheError(f"{path}: sha256 {actual} differs from the lock's {pin.sha256}")
    return len(missing)


def stage_wheels(
    pins: Sequence[WheelPin], cache: Path, dest: Path, project_wheel: Path | None = None
) -> None:
    """Exactly the pinned wheels (plus the project's), in one directory for ``--no-index``."""
    dest.mkdir(parents=True, exist_ok=True)
    for pin in pins:
        shutil.copyfile(cache / pin.filename, dest / pin.filename)
    if project_wheel is not None:
        shutil.copyfile(project_wheel, dest / project_wheel.name)
