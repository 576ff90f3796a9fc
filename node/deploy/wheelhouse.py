"""The wheelhouse a rollout installs from: the project's wheel and its dependencies as binary
wheels for each target Python, so hosts install with ``pip --no-index`` (air-gapped hosts work).

Layout of a wheelhouse directory::

    wheelhouse.json        index: project version, and per Python the archive, its sha256,
                           the pip wheel and every wheel file name
    wheels-cp313.tar       one uncompressed tar per Python holding one directory,
                           ``mosaik-wheels-<digest>/``, named by a digest of its wheels;
                           deterministic (sorted, mtime 0, root-owned)

The role unpacks the archive for the host's Python unless that directory exists, and
reinstalls the venv only when the directory it was installed from differs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from node.deploy.errors import WheelhouseError

INDEX: Final = "wheelhouse.json"
FORMAT: Final = 1
PROJECT: Final = "mosaik-py"
DEFAULT_PYTHONS: Final = ("3.11", "3.12", "3.13")
# Binary wheels hosts with glibc >= 2.34 accept (Debian 12/13, Ubuntu 22.04/24.04), newest first.
PLATFORMS: Final = {
    arch: tuple(f"{tag}_{arch}" for tag in tags)
    for arch, tags in {
        "x86_64": ("manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014"),
        "aarch64": ("manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014"),
    }.items()
}
# Wheels of the same source are the same bytes (zip entries carry this time).
SOURCE_DATE_EPOCH: Final = 1767225600
_PYTHON: Final = re.compile(r"3\.(\d{1,2})")
_WHEEL: Final = re.compile(r"(?P<name>[^-]+)-(?P<version>[^-]+)(-[^-]+)?-[^-]+-[^-]+-[^-]+\.whl")

Echo = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PythonWheels:
    """The wheels for one target Python, packed in ``archive``."""

    archive: str
    sha256: str
    directory: str
    pip: str
    project: str
    wheels: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "sha256": self.sha256,
            "directory": self.directory,
            "pip": self.pip,
            "project": self.project,
            "wheels": list(self.wheels),
        }


@dataclass(frozen=True, slots=True)
class WheelhouseIndex:
    version: str
    pythons: Mapping[str, PythonWheels]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "project": PROJECT,
            "version": self.version,
            "pythons": {py: wheels.to_json() for py, wheels in sorted(self.pythons.items())},
        }


def check_python(version: str) -> str:
    """A target Python as ``3.N`` the runtime supports (3.11 or newer)."""
    match = _PYTHON.fullmatch(version)
    if match is None or int(match.group(1)) < 11:
        raise WheelhouseError(f"Python {version!r}: expected 3.11 or newer, as 3.N")
    return version


def build_wheelhouse(
    source: Path,
    out: Path,
    pythons: Sequence[str] = DEFAULT_PYTHONS,
    arch: str = "x86_64",
    echo: Echo = print,
) -> WheelhouseIndex:
    """``pip wheel`` the project from ``source``, ``pip download`` its dependencies (and pip)
    for each Python, and pack them into ``out``. Needs a package index (or pip's config)."""
    if not (source / "pyproject.toml").is_file():
        raise WheelhouseError(f"{source}: no pyproject.toml; --source must be the project tree")
    if arch not in PLATFORMS:
        raise WheelhouseError(f"architecture {arch!r}: expected one of {', '.join(PLATFORMS)}")
    targets = [check_python(py) for py in dict.fromkeys(pythons)]
    if not targets:
        raise WheelhouseError("no target Python given")
    with tempfile.TemporaryDirectory(prefix="mosaik-wheelhouse-") as work:
        project_dir = Path(work) / "project"
        echo(f"building the {PROJECT} wheel from {source}")
        _pip(["wheel", "--no-deps", "--wheel-dir", str(project_dir), str(source)], echo)
        project = _single(project_dir.glob("*.whl"), f"the {PROJECT} wheel in {project_dir}")
        per_python: dict[str, list[Path]] = {}
        for python in targets:
            dest = Path(work) / f"cp{python.replace('.', '')}"
            echo(f"downloading dependencies for CPython {python} ({arch})")
            _pip(
                [
                    "download",
                    *_target_flags(python, arch),
                    "--dest",
                    str(dest),
                    str(project),
                    "pip",
                ],
                echo,
            )
            per_python[python] = [p for p in sorted(dest.glob("*.whl")) if p.name != project.name]
        return pack_wheelhouse(out, project, per_python)


def pack_wheelhouse(
    out: Path, project: Path, per_python: Mapping[str, Sequence[Path]]
) -> WheelhouseIndex:
    """Write one deterministic tar per Python (its wheels plus ``project``) and the index."""
    version = _wheel_version(project)
    out.mkdir(parents=True, exist_ok=True)
    pythons = {}
    for python, wheels in sorted(per_python.items()):
        check_python(python)
        pips = [w.name for w in wheels if _wheel_name(w.name) == "pip"]
        if len(pips) != 1:
            raise WheelhouseError(f"Python {python}: expected one pip wheel, found {len(pips)}")
        members = sorted({w.name: w for w in [*wheels, project]}.items())
        archive = f"wheels-cp{python.replace('.', '')}.tar"
        directory = f"mosaik-wheels-{_digest(members)[:16]}"
        data = _deterministic_tar(directory, members)
        (out / archive).write_bytes(data)
        pythons[python] = PythonWheels(
            archive=archive,
            sha256=hashlib.sha256(data).hexdigest(),
            directory=directory,
            pip=pips[0],
            project=project.name,
            wheels=tuple(name for name, _ in members),
        )
    index = WheelhouseIndex(version, pythons)
    (out / INDEX).write_text(json.dumps(index.to_json(), indent=2, sort_keys=True) + "\n")
    return index


def read_index(directory: Path) -> WheelhouseIndex:
    """The index of a wheelhouse directory, checked against its archives' sha256."""
    path = directory / INDEX
    try:
        document = json.loads(path.read_text())
        if document["format"] != FORMAT or document["project"] != PROJECT:
            raise WheelhouseError(f"{path}: not a format-{FORMAT} {PROJECT} wheelhouse index")
        pythons = {
            check_python(py): PythonWheels(
                archive=entry["archive"],
                sha256=entry["sha256"],
                directory=entry["directory"],
                pip=entry["pip"],
                project=entry["project"],
                wheels=tuple(entry["wheels"]),
            )
            for py, entry in document["pythons"].items()
        }
        version = str(document["version"])
    except FileNotFoundError:
        raise WheelhouseError(
            f"{directory}: no {INDEX}; build one with `mosaik deploy wheelhouse --out DIR`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WheelhouseError(f"{path}: unreadable wheelhouse index ({exc})") from None
    for python, wheels in pythons.items():
        archive = directory / wheels.archive
        try:
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        except OSError as exc:
            raise WheelhouseError(f"{archive}: cannot read: {exc.strerror}") from None
        if digest != wheels.sha256:
            raise WheelhouseError(f"{archive}: sha256 differs from {INDEX} (Python {python})")
    return WheelhouseIndex(version, pythons)


def _target_flags(python: str, arch: str) -> list[str]:
    digits = python.replace(".", "")
    flags = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    flags += ["--abi", f"cp{digits}", "--abi", "abi3", "--abi", "none"]
    for platform in PLATFORMS[arch]:
        flags += ["--platform", platform]
    return flags


def _pip(args: Sequence[str], echo: Echo) -> None:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(SOURCE_DATE_EPOCH))
    try:
        result = subprocess.run(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
    except OSError as exc:
        raise WheelhouseError(f"cannot run pip: {exc.strerror}") from None
    if result.returncode != 0:
        tail = "\n".join(result.stdout.strip().splitlines()[-15:])
        raise WheelhouseError(f"pip {args[0]} failed (exit {result.returncode}):\n{tail}")
    for line in result.stdout.splitlines():
        if line.startswith(("Saved ", "Successfully", "File was already")):
            echo(f"  {line.strip()}")


def _single(paths: Iterable[Path], what: str) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise WheelhouseError(f"expected {what}, found {len(found)}")
    path: Path = found[0]
    return path


def _parse_wheel(filename: str) -> tuple[str, str]:
    """(normalized project name, version) of a wheel file name."""
    match = _WHEEL.fullmatch(filename)
    if match is None:
        raise WheelhouseError(f"{filename}: not a wheel file name")
    return match.group("name").replace("_", "-").lower(), match.group("version")


def _wheel_name(filename: str) -> str:
    return _parse_wheel(filename)[0]


def _wheel_version(project: Path) -> str:
    name, version = _parse_wheel(project.name)
    if name != PROJECT:
        raise WheelhouseError(f"{project.name}: not a {PROJECT} wheel")
    return version


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WheelhouseError(f"{path}: cannot read: {exc.strerror}") from None


def _digest(members: Sequence[tuple[str, Path]]) -> str:
    """sha256 over every wheel's name and sha256: names the unpacked directory."""
    listing = "".join(
        f"{name} {hashlib.sha256(_read(path)).hexdigest()}\n" for name, path in members
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def _deterministic_tar(directory: str, members: Sequence[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        folder = tarfile.TarInfo(directory)
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        entries: list[tuple[tarfile.TarInfo, bytes | None]] = [(folder, None)]
        for name, path in members:
            data = _read(path)
            info = tarfile.TarInfo(f"{directory}/{name}")
            info.size, info.mode = len(data), 0o644
            entries.append((info, data))
        for info, content in entries:
            info.mtime, info.uid, info.gid = 0, 0, 0
            info.uname = info.gname = "root"
            tar.addfile(info, None if content is None else io.BytesIO(content))
    return buffer.getvalue()
