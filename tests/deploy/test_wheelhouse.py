"""Wheelhouse packing: deterministic archives, a checked index, clear errors."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from node.deploy.errors import WheelhouseError
from node.deploy.wheelhouse import INDEX, check_python, pack_wheelhouse, read_index
from tests.deploy.fakes import bundled_pip, fake_runtime_wheel


def _pack(out: Path, version: str = "1.2.3") -> Path:
    project = fake_runtime_wheel(out.parent / f"project-{out.name}", version)
    pack_wheelhouse(out, project, {"3.13": [bundled_pip()], "3.11": [bundled_pip()]})
    return out


def test_same_wheels_give_the_same_bytes(tmp_path: Path) -> None:
    one, two = _pack(tmp_path / "one"), _pack(tmp_path / "two")
    for name in ("wheels-cp311.tar", "wheels-cp313.tar", INDEX):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_index_lists_archive_directory_pip_and_project(tmp_path: Path) -> None:
    index = read_index(_pack(tmp_path / "wh"))
    assert index.version == "1.2.3"
    wheels = index.pythons["3.13"]
    assert wheels.project == "mosaik_py-1.2.3-py3-none-any.whl"
    assert wheels.pip.startswith("pip-")
    with tarfile.open(tmp_path / "wh" / wheels.archive) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == [
        wheels.directory,
        *(f"{wheels.directory}/{name}" for name in wheels.wheels),
    ]
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)


def test_another_project_version_gets_another_directory(tmp_path: Path) -> None:
    one = read_index(_pack(tmp_path / "one", "1.0.0")).pythons["3.13"]
    two = read_index(_pack(tmp_path / "two", "1.0.1")).pythons["3.13"]
    assert one.directory != two.directory


def test_a_changed_archive_is_detected(tmp_path: Path) -> None:
    out = _pack(tmp_path / "wh")
    archive = out / "wheels-cp313.tar"
    archive.write_bytes(archive.read_bytes() + b"\0" * 512)
    with pytest.raises(WheelhouseError, match="sha256 differs"):
        read_index(out)


def test_missing_or_foreign_index(tmp_path: Path) -> None:
    with pytest.raises(WheelhouseError, match=r"no wheelhouse\.json"):
        read_index(tmp_path)
    (tmp_path / INDEX).write_text(json.dumps({"format": 1, "project": "other"}))
    with pytest.raises(WheelhouseError, match="not a format-1 mosaik-py wheelhouse"):
        read_index(tmp_path)


def test_pip_is_required_for_each_python(tmp_path: Path) -> None:
    project = fake_runtime_wheel(tmp_path / "p", "1.0.0")
    with pytest.raises(WheelhouseError, match=r"Python 3\.13: expected one pip wheel"):
        pack_wheelhouse(tmp_path / "wh", project, {"3.13": []})


def test_project_must_be_mosaik_py(tmp_path: Path) -> None:
    with pytest.raises(WheelhouseError, match="not a mosaik-py wheel"):
        pack_wheelhouse(tmp_path / "wh", bundled_pip(), {"3.13": [bundled_pip()]})


@pytest.mark.parametrize("version", ["3.10", "2.7", "3", "3.x", "py313"])
def test_unsupported_pythons_are_refused(version: str) -> None:
    with pytest.raises(WheelhouseError, match=r"3\.11 or newer"):
        check_python(version)
