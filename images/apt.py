"""Debian packages: resolving a pinned set, fetching it into the cache, serving it locally.

Resolution and downloads use the host's apt with a private state directory (the host's own
package state is never read or changed). Builds never reach the mirror for packages: they
install from a flat local repository made of exactly the locked .debs in the cache.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from images.errors import CacheError, CommandFailed, LockError
from images.lock import DebPin
from images.tools import run, sha256_file

ARCH: Final = "amd64"
KEYRING: Final = "/usr/share/keyrings/debian-archive-keyring.gpg"
_INST: Final = re.compile(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)", re.MULTILINE)
# What mmdebstrap's minbase variant installs besides the recipe's packages.
MINBASE: Final = ("?essential", "?priority(required)", "apt")


class PrivateApt:
    """The host's apt-get with its own sources, lists, cache and an empty dpkg status."""

    def __init__(self, work: Path, mirror: str, suite: str, components: Sequence[str]) -> None:
        self.work = work
        for sub in ("lists/partial", "archives/partial", "parts", "prefs"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        (work / "status").write_text("")
        (work / "sources.list").write_text(
            f"deb [arch={ARCH} signed-by={KEYRING}] {mirror} {suite} {' '.join(components)}\n"
        )
        self.options = [
            f"-oDir::Etc::SourceList={work / 'sources.list'}",
            f"-oDir::Etc::SourceParts={work / 'parts'}",
            f"-oDir::Etc::PreferencesParts={work / 'prefs'}",
            f"-oDir::Etc::Preferences={work / 'prefs' / 'none'}",
            f"-oDir::State::Lists={work / 'lists'}",
            f"-oDir::State::status={work / 'status'}",
            f"-oDir::Cache::Archives={work / 'archives'}",
            f"-oDir::Cache={work}",
            f"-oAPT::Architecture={ARCH}",
            f"-oAPT::Architectures={ARCH}",
            "-oAPT::Install-Recommends=false",
            "-oAcquire::Languages=none",
            "-oDebug::NoLocking=true",
        ]
        self.log = work / "apt.log"

    def update(self) -> None:
        run(["apt-get", *self.options, "update"], "apt-get update (private lists)", log=self.log)

    def resolve(self, packages: Iterable[str]) -> list[tuple[str, str, str]]:
        """(name, version, arch) of everything a fresh install of ``packages`` brings."""
        output = run(
            ["apt-get", *self.options, "--simulate", "install", *packages],
            "resolving the package set",
            log=self.log,
        )
        found = sorted(set(_INST.findall(output)))
        if not found:
            raise LockError(f"apt resolved nothing for {' '.join(packages)}")
        return found

    def kernel(self, meta: str) -> tuple[str, str, str]:
        """The versioned kernel package a metapackage (``linux-image-amd64``) stands for."""
        candidates = [
            row
            for row in self.resolve([meta])
            if row[0].startswith("linux-image-") and row[0] != meta
        ]
        if len(candidates) != 1:
            raise LockError(f"{meta}: expected one kernel image package, got {candidates}")
        return candidates[0]

    def download(self, pins: Iterable[tuple[str, str]], dest: Path) -> None:
        """Fetch ``name=version`` .debs into ``dest`` (apt names them name_version_arch.deb)."""
        wanted = [f"{name}={version}" for name, version in pins]
        if not wanted:
            return
        try:
            run(["apt-get", *self.options, "download", *wanted], "apt-get download", cwd=dest)
        except CommandFailed as exc:
            raise CacheError(
                f"cannot download pinned packages from the mirror ({exc}); if the mirror no "
                "longer carries these versions, run with --update-lock"
            ) from None


def fetch_debs(pins: Sequence[DebPin], cache: Path, apt: PrivateApt | None) -> int:
    """Make sure every pinned .deb is in ``cache`` with its sha256; return how many were fetched.

    ``apt`` is used (and updated) only when something is missing.
    """
    cache.mkdir(parents=True, exist_ok=True)
    missing = [pin for pin in pins if not (cache / pin.filename).is_file()]
    if missing:
        if apt is None:
            raise CacheError(f"{len(missing)} pinned packages are not in {cache}")
        apt.update()
        apt.download([(pin.name, pin.version) for pin in missing], cache)
    for pin in pins:
        path = cache / pin.filename
        if not path.is_file():
            raise CacheError(f"{pin.filename}: not in {cache} after download")
        actual = sha256_file(path)
        if actual != pin.sha256:
            raise CacheError(
                f"{path}: sha256 {actual} differs from the lock's {pin.sha256}; delete the file "
                "to fetch it again, or run --update-lock if the archive re-published it"
            )
    return len(missing)


def make_local_repository(pins: Sequence[DebPin], cache: Path, repo: Path) -> None:
    """A flat repository (``deb [trusted=yes] file:REPO ./``) of exactly the pinned .debs."""
    repo.mkdir(parents=True, exist_ok=True)
    paragraphs: list[str] = []
    for pin in sorted(pins):
        source = cache / pin.filename
        target = repo / pin.filename
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        control = run(["dpkg-deb", "--field", target], f"reading {pin.filename}").rstrip("\n")
        paragraphs.append(
            f"{control}\nFilename: ./{pin.filename}\nSize: {target.stat().st_size}\n"
            f"SHA256: {pin.sha256}\n"
        )
    (repo / "Packages").write_text("\n".join(paragraphs))
