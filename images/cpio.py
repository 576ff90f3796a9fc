"""A deterministic writer (and a reader) for the cpio "newc" format the kernel unpacks.

Determinism is the writer's job, not its caller's: entries are sorted by their path bytes
(a directory always precedes its contents, since a prefix sorts first), every entry gets the
same mtime, inode numbers are assigned 1, 2, 3 ... in that order, hard links are written as
independent files (nlink 1), and the device of every entry is 0:0. Only what the caller puts
in an entry (path, type and permission bits, uid, gid, contents, device numbers of device
nodes) reaches the archive, so neither the host's inode numbers, mtimes and umask nor the
order of the input can change a byte.

Layout (``Documentation/driver-api/early-userspace/buffer-format.rst``): per entry a 110-byte
ASCII header ("070701" and 13 eight-digit hex fields), the NUL-terminated name padded to a
multiple of 4, the data padded to a multiple of 4; the archive ends with ``TRAILER!!!``.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Final

from images.errors import CpioError

MAGIC: Final = b"070701"
TRAILER: Final = "TRAILER!!!"
_HEADER_SIZE: Final = 110
_FIELDS: Final = 13
_CHUNK: Final = 1 << 20
_TYPES: Final = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "directory",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


@dataclass(frozen=True, slots=True)
class CpioEntry:
    """One archive member. ``mode`` holds the type and permission bits (``st_mode``).

    A regular file's contents come from ``data`` or, streamed at write time, from ``source``
    (``size`` bytes); a symlink's ``data`` is its target. ``rdev`` is (major, minor) for
    device nodes.
    """

    path: str
    mode: int
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    source: Path | None = None
    size: int = 0
    rdev: tuple[int, int] = (0, 0)

    @classmethod
    def file(
        cls, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> CpioEntry:
        return cls(path, stat.S_IFREG | mode, uid, gid, data=data, size=len(data))

    @classmethod
    def directory(cls, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> CpioEntry:
        return cls(path, stat.S_IFDIR | mode, uid, gid)

    @classmethod
    def symlink(cls, path: str, target: str, uid: int = 0, gid: int = 0) -> CpioEntry:
        raw = target.encode()
        return cls(path, stat.S_IFLNK | 0o777, uid, gid, data=raw, size=len(raw))

    @property
    def kind(self) -> str:
        return _TYPES.get(stat.S_IFMT(self.mode), "unknown")


@dataclass(frozen=True, slots=True)
class CpioMember:
    """An entry as read back from an archive."""

    path: str
    mode: int
    uid: int
    gid: int
    mtime: int
    ino: int
    nlink: int
    data: bytes
    rdev: tuple[int, int]


def entries_from_tree(root: Path) -> list[CpioEntry]:
    """Every file, directory, link and device node under ``root`` (``.`` is the root itself).

    Types, permission bits, uid, gid and device numbers come from ``lstat``; mtimes, inode
    numbers and link counts do not (the writer fixes them).
    """
    entries: list[CpioEntry] = []
    try:
        entries.append(_entry(root, "."))
        for directory, dirnames, filenames in os.walk(root):
            base = Path(directory)
            for name in dirnames + filenames:
                full = base / name
                entries.append(_entry(full, full.relative_to(root).as_posix()))
    except OSError as exc:
        raise CpioError(f"cannot read {exc.filename}: {exc.strerror}") from None
    return entries


def _entry(path: Path, name: str) -> CpioEntry:
    info = path.lstat()
    kind = stat.S_IFMT(info.st_mode)
    base = CpioEntry(name, info.st_mode, info.st_uid, info.st_gid)
    if kind == stat.S_IFREG:
        return replace(base, source=path, size=info.st_size)
    if kind == stat.S_IFLNK:
        target = os.fsencode(os.readlink(path))
        return replace(base, data=target, size=len(target))
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        return replace(base, rdev=(os.major(info.st_rdev), os.minor(info.st_rdev)))
    if kind in (stat.S_IFDIR, stat.S_IFIFO):
        return base
    raise CpioError(f"{path}: cannot archive a {_TYPES.get(kind, 'file of unknown type')}")


def write_newc(entries: Iterable[CpioEntry], out: IO[bytes], *, mtime: int = 0) -> int:
    """Write ``entries`` (any order) as one newc archive with its trailer; return its size."""
    ordered = sorted(entries, key=lambda e: _checked_path(e.path))
    for previous, current in itertools.pairwise(ordered):
        if previous.path == current.path:
            raise CpioError(f"{current.path}: the archive holds this path twice")
    if not 0 <= mtime <= 0xFFFFFFFF:
        raise CpioError(f"mtime {mtime} does not fit the newc header")
    written = 0
    for ino, entry in enumerate(ordered, start=1):
        written += _write_entry(out, entry, ino, mtime)
    written += _write_header(out, TRAILER, ino=0, mode=0, uid=0, gid=0, nlink=1, mtime=0, size=0)
    return written


def _checked_path(path: str) -> bytes:
    if path == ".":
        return b"."
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise CpioError(f"{path!r}: archive paths are relative, without '.', '..' or '//'")
    if path == TRAILER:
        raise CpioError(f"{path!r} is the archive's end marker")
    return path.encode()


def _write_entry(out: IO[bytes], entry: CpioEntry, ino: int, mtime: int) -> int:
    kind = stat.S_IFMT(entry.mode)
    if kind not in _TYPES:
        raise CpioError(f"{entry.path}: mode {entry.mode:#o} has no file type")
    carries_data = kind in (stat.S_IFREG, stat.S_IFLNK)
    if not carries_data and (entry.data or entry.source is not None):
        raise CpioError(f"{entry.path}: a {entry.kind} cannot carry data")
    size = entry.size if carries_data else 0
    if entry.source is None and len(entry.data) != size:
        raise CpioError(f"{entry.path}: size {size} but {len(entry.data)} bytes of data")
    nlink = 2 if kind == stat.S_IFDIR else 1
    written = _write_header(
        out,
        entry.path,
        ino=ino,
        mode=entry.mode,
        uid=entry.uid,
        gid=entry.gid,
        nlink=nlink,
        mtime=mtime,
        size=size,
        rdev=entry.rdev,
    )
    if entry.source is not None:
        copied = _copy(entry.source, out, size, entry.path)
    else:
        out.write(entry.data)
        copied = size
    out.write(_padding(copied))
    return written + copied + len(_padding(copied))


def _copy(source: Path, out: IO[bytes], size: int, name: str) -> int:
    remaining = size
    try:
        with source.open("rb") as handle:
            while remaining:
                chunk = handle.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)
    except OSError as exc:
        raise CpioError(f"{name}: cannot read {source}: {exc.strerror}") from None
    if remaining:
        raise CpioError(f"{name}: {source} shrank while being archived")
    return size


def _write_header(
    out: IO[bytes],
    name: str,
    *,
    ino: int,
    mode: int,
    uid: int,
    gid: int,
    nlink: int,
    mtime: int,
    size: int,
    rdev: tuple[int, int] = (0, 0),
) -> int:
    raw_name = name.encode() + b"\0"
    fields = (ino, mode, uid, gid, nlink, mtime, size, 0, 0, rdev[0], rdev[1], len(raw_name), 0)
    for value in fields:
        if not 0 <= value <= 0xFFFFFFFF:
            raise CpioError(f"{name}: header field {value} does not fit eight hex digits")
    header = MAGIC + b"".join(b"%08X" % value for value in fields)
    out.write(header + raw_name)
    pad = _padding(len(header) + len(raw_name))
    out.write(pad)
    return len(header) + len(raw_name) + len(pad)


def _padding(length: int) -> bytes:
    return b"\0" * (-length % 4)


def read_newc(data: bytes) -> list[CpioMember]:
    """The members of one newc archive (up to its trailer); ``CpioError`` if malformed."""
    return list(_members(data))


def _members(data: bytes) -> Iterator[CpioMember]:
    position = 0
    while True:
        header = data[position : position + _HEADER_SIZE]
        if len(header) < _HEADER_SIZE:
            raise CpioError(f"truncated archive: header at offset {position} is incomplete")
        if header[:6] != MAGIC:
            raise CpioError(f"offset {position}: bad magic {header[:6]!r}, expected {MAGIC!r}")
        try:
            fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(_FIELDS)]
        except ValueError:
            raise CpioError(f"offset {position}: header field is not hexadecimal") from None
        ino, mode, uid, gid, nlink, mtime, size, _maj, _min, rmaj, rmin, name_size, _ = fields
        name_start = position + _HEADER_SIZE
        name_end = name_start + name_size
        if name_size == 0 or name_end > len(data) or data[name_end - 1] != 0:
            raise CpioError(f"offset {position}: truncated or unterminated name")
        name = data[name_start : name_end - 1].decode("utf-8", "surrogateescape")
        data_start = name_end + (-(name_end - position) % 4)
        data_end = data_start + size
        if data_end > len(data):
            raise CpioError(f"{name}: truncated data ({size} bytes declared)")
        if name == TRAILER:
            return
        yield CpioMember(
            name, mode, uid, gid, mtime, ino, nlink, data[data_start:data_end], (rmaj, rmin)
        )
        position = data_end + (-size % 4)
