"""Choosing the kernel modules the initramfs carries: the requested ones and their dependencies.

Dependencies come from each module's own ``.modinfo`` (``depends=a,b``), read from the
compressed ``.ko.xz``/``.ko.zst``/``.ko`` files, so no ``depmod`` output is needed; modules
built into the kernel (``modules.builtin``) need no file.
"""

from __future__ import annotations

import lzma
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from images.errors import ImageError

_SUFFIXES: Final = (".ko.xz", ".ko.zst", ".ko.gz", ".ko")
_DEPENDS: Final = re.compile(rb"(?:^|\0)depends=([^\0]*)\0")


def module_name(text: str) -> str:
    """The kernel's canonical module name (``tdx-guest`` and ``tdx_guest`` are one module)."""
    for suffix in _SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return Path(text).name.replace("-", "_")


def module_index(tree: Path) -> dict[str, Path]:
    """Module name -> file, for every module file under ``tree`` (``lib/modules/<version>``)."""
    index: dict[str, Path] = {}
    for path in sorted(tree.rglob("*.ko*")):
        if path.name.endswith(_SUFFIXES):
            index[module_name(path.name)] = path
    return index


def builtin_modules(tree: Path) -> set[str]:
    try:
        lines = (tree / "modules.builtin").read_text().splitlines()
    except OSError:
        return set()
    return {module_name(line.strip()) for line in lines if line.strip()}


def module_depends(path: Path) -> list[str]:
    """The ``depends=`` list of a module file's modinfo."""
    raw = path.read_bytes()
    if path.name.endswith(".xz"):
        try:
            raw = lzma.decompress(raw)
        except lzma.LZMAError as exc:
            raise ImageError(f"{path}: not a valid xz module: {exc}") from None
    elif not path.name.endswith(".ko"):
        raise ImageError(f"{path}: only .ko and .ko.xz modules are supported")
    match = _DEPENDS.search(raw)
    if match is None or not match.group(1):
        return []
    return [module_name(name) for name in match.group(1).decode().split(",") if name]


def module_closure(requested: Iterable[str], tree: Path) -> list[Path]:
    """The files of ``requested`` modules and everything they depend on, sorted.

    A requested module that is built in needs nothing; one that is neither built in nor a
    file of this kernel is an error naming it.
    """
    index = module_index(tree)
    builtin = builtin_modules(tree)
    chosen: dict[str, Path] = {}
    pending = [module_name(name) for name in requested]
    while pending:
        name = pending.pop()
        if name in chosen or name in builtin:
            continue
        path = index.get(name)
        if path is None:
            raise ImageError(f"kernel module {name!r} is neither built in nor shipped in {tree}")
        chosen[name] = path
        pending.extend(module_depends(path))
    return sorted(chosen.values())
