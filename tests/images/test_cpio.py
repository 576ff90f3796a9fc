"""The deterministic newc writer: round trips, byte stability, independence from the host."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from images.cpio import CpioEntry, entries_from_tree, read_newc, write_newc
from images.errors import CpioError

EPOCH = 1767225600


def _archive(entries: list[CpioEntry], mtime: int = EPOCH) -> bytes:
    buffer = io.BytesIO()
    size = write_newc(entries, buffer, mtime=mtime)
    assert size == len(buffer.getvalue())
    return buffer.getvalue()


def _sample() -> list[CpioEntry]:
    return [
        CpioEntry.directory("."),
        CpioEntry.directory("etc"),
        CpioEntry.file("etc/hostname", b"mosaik-node\n"),
        CpioEntry.file("etc/shadow", b"root:*:\n", mode=0o640, gid=42),
        CpioEntry.symlink("init", "usr/lib/systemd/systemd"),
        CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        CpioEntry.directory("dev"),
        CpioEntry.file("empty", b""),
        CpioEntry.file("odd", b"123"),
    ]


def test_round_trip_keeps_every_field_the_caller_set() -> None:
    members = {m.path: m for m in read_newc(_archive(_sample()))}
    assert list(members) == sorted(members, key=str.encode)
    assert members["etc/hostname"].data == b"mosaik-node\n"
    assert members["etc/shadow"].mode == stat.S_IFREG | 0o640
    assert members["etc/shadow"].gid == 42
    assert members["init"].data == b"usr/lib/systemd/systemd"
    assert stat.S_ISLNK(members["init"].mode)
    assert members["dev/console"].rdev == (5, 1)
    assert members["odd"].data == b"123"
    assert {m.mtime for m in members.values()} == {EPOCH}
    assert [m.ino for m in members.values()] == list(range(1, len(members) + 1))
    assert members["etc"].nlink == 2 and members["etc/hostname"].nlink == 1


def test_output_is_independent_of_input_order() -> None:
    entries = _sample()
    assert _archive(entries) == _archive(list(reversed(entries)))


def test_directories_precede_their_contents() -> None:
    paths = [m.path for m in read_newc(_archive(_sample()))]
    for index, path in enumerate(paths):
        parent = path.rpartition("/")[0]
        if parent:
            assert parent in paths[:index], path


def _tree(root: Path, umask: int, mtime: int) -> None:
    old = os.umask(umask)
    try:
        (root / "usr/bin").mkdir(parents=True)
        (root / "usr/bin/tool").write_bytes(b"#!/bin/sh\necho hi\n")
        (root / "etc").mkdir()
        (root / "etc/motd").write_text("welcome\n")
        (root / "bin").symlink_to("usr/bin")
    finally:
        os.umask(old)
    # Permissions are the builder's decision, set explicitly, so the umask cannot leak in.
    for relative, mode in (
        ("", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("etc", 0o755),
        ("usr/bin/tool", 0o755),
        ("etc/motd", 0o644),
    ):
        (root / relative).chmod(mode)
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime), follow_symlinks=False)


def test_trees_built_with_other_umasks_and_mtimes_archive_identically(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    _tree(first, 0o022, 1_000_000)
    _tree(second, 0o077, 2_000_000_000)
    one = _archive(entries_from_tree(first))
    assert one == _archive(entries_from_tree(second))
    assert one == _archive(list(reversed(entries_from_tree(first))))
    members = {m.path: m for m in read_newc(one)}
    assert members["usr/bin/tool"].data == b"#!/bin/sh\necho hi\n"
    assert members["bin"].data == b"usr/bin"
    assert members["."].mode == stat.S_IFDIR | 0o755


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")
def test_gnu_cpio_lists_and_extracts_the_archive(tmp_path: Path) -> None:
    data = _archive(_sample()[:5] + _sample()[7:])
    listed = subprocess.run(
        ["cpio", "-t", "--quiet"], input=data, capture_output=True, check=True
    ).stdout.decode()
    assert listed.split() == [".", "empty", "etc", "etc/hostname", "etc/shadow", "init", "odd"]
    subprocess.run(
        ["cpio", "-id", "--quiet", "--no-absolute-filenames"],
        input=data,
        cwd=tmp_path,
        check=True,
    )
    assert (tmp_path / "etc/hostname").read_bytes() == b"mosaik-node\n"
    assert os.readlink(tmp_path / "init") == "usr/lib/systemd/systemd"


def test_streams_file_contents_from_source(tmp_path: Path) -> None:
    source = tmp_path / "big"
    source.write_bytes(bytes(range(256)) * 5000)
    entry = CpioEntry("big", stat.S_IFREG | 0o644, source=source, size=source.stat().st_size)
    [member] = read_newc(_archive([entry]))
    assert member.data == source.read_bytes()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([CpioEntry.file("a", b"1"), CpioEntry.file("a", b"2")], "twice"),
        ([CpioEntry.file("/etc/passwd", b"")], "relative"),
        ([CpioEntry.file("etc/../x", b"")], "relative"),
        ([CpioEntry.file("TRAILER!!!", b"")], "end marker"),
        ([CpioEntry("dir", stat.S_IFDIR | 0o755, data=b"x", size=1)], "cannot carry data"),
        ([CpioEntry("a", stat.S_IFREG | 0o644, data=b"abc", size=2)], "size 2"),
        ([CpioEntry("a", 0o644)], "no file type"),
    ],
)
def test_refuses_entries_it_cannot_write_faithfully(entries: list[CpioEntry], message: str) -> None:
    with pytest.raises(CpioError, match=message):
        _archive(entries)


def test_reader_reports_truncation_and_bad_magic() -> None:
    data = _archive(_sample())
    with pytest.raises(CpioError, match="truncated"):
        read_newc(data[:200])
    with pytest.raises(CpioError, match="bad magic"):
        read_newc(b"070707" + data[6:])


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_reader_raises_only_cpio_errors_on_garbage(data: bytes) -> None:
    try:
        read_newc(b"070701" + data)
    except CpioError:
        pass


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abcxyz", min_size=1, max_size=6), st.binary(max_size=64), max_size=12
    )
)
def test_any_flat_set_of_files_round_trips(files: dict[str, bytes]) -> None:
    entries = [CpioEntry.file(name, data) for name, data in files.items()]
    members = read_newc(_archive(entries))
    assert {m.path: m.data for m in members} == files
