"""Host tools: which the build needs, and running them with failures translated."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from images.errors import CommandFailed, ImageError, ToolMissing

# tool -> (Debian package, what the build uses it for)
BUILD_TOOLS: Final = {
    "mmdebstrap": ("mmdebstrap", "bootstrap the root filesystem"),
    "apt-get": ("apt", "resolve and download the pinned packages"),
    "dpkg-deb": ("dpkg", "index the cached packages and extract the kernel"),
    "chroot": ("coreutils", "install the node runtime inside the root filesystem"),
    "zstd": ("zstd", "compress the initrd"),
}
RUN_TOOLS: Final = {"qemu-system-x86_64": ("qemu-system-x86", "boot the image")}
FIRMWARE: Final = Path("/usr/share/ovmf/OVMF.fd")


def require_tools(tools: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """The path of every tool, or ``ToolMissing`` naming the first absent one."""
    found: dict[str, str] = {}
    for tool, (package, purpose) in tools.items():
        path = shutil.which(tool)
        if path is None:
            raise ToolMissing(tool, package, purpose)
        found[tool] = path
    return found


def require_firmware(path: Path = FIRMWARE) -> Path:
    if not path.is_file():
        raise ToolMissing(str(path), "ovmf", "boot the guest (the TDVF firmware)")
    return path


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise ImageError(f"{what} must run as root (mmdebstrap --mode=root and chroot)")


def run(
    argv: Sequence[str | Path],
    what: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
) -> str:
    """Run ``argv``; return its output, or raise ``CommandFailed`` with the output's tail."""
    command = [str(a) for a in argv]
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
    except FileNotFoundError:
        raise ImageError(f"{what}: {command[0]} is not installed") from None
    except OSError as exc:
        raise ImageError(f"{what}: cannot run {command[0]}: {exc.strerror}") from None
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(command)}\n{result.stdout}\n")
    if result.returncode != 0:
        raise CommandFailed(what, result.returncode, result.stdout)
    return result.stdout


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}") from None
    return digest.hexdigest()


def tool_version(argv: Sequence[str]) -> str:
    """The first line a tool prints for its version (for the manifest)."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return (
        (result.stdout or result.stderr).strip().splitlines()[0]
        if result.stdout or result.stderr
        else "unknown"
    )
