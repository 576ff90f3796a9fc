"""The guest's boot-parameter parser: sample /proc/cmdline strings to the EnvironmentFile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from images import guestconfig
from images.guestconfig import (
    GuestConfigError,
    drive_words,
    find_config_drive,
    is_tdx_guest,
    node_environment,
    render_environment,
    split_cmdline,
)

PEER = "ab" * 32
DEBIAN_CMDLINE = (
    "BOOT_IMAGE=/vmlinuz console=ttyS0,115200 loglevel=4 panic=-1 initrd=initrd "
    "mosaik.network=orders mosaik.tags=matcher,eu-west "
    f"mosaik.bootstrap={PEER}@10.0.0.5:7400,{PEER}@[fd00::1]:7401 "
    "mosaik.metrics=0.0.0.0:9100\n"
)


def test_kernel_splitting_rules() -> None:
    assert split_cmdline('a b=c  d="e f" "g=h i" quiet -- mosaik.network=x') == [
        ("a", None),
        ("b", "c"),
        ("d", "e f"),
        ("g", "h i"),
        ("quiet", None),
    ]
    assert split_cmdline("") == []
    assert split_cmdline('x="unterminated value') == [("x", "unterminated value")]
    assert split_cmdline("k= empty") == [("k", ""), ("empty", None)]


def test_sample_proc_cmdline_becomes_the_environment() -> None:
    env = node_environment(split_cmdline(DEBIAN_CMDLINE), "/proc/cmdline")
    assert env == {
        "MOSAIK_NETWORK": "orders",
        "MOSAIK_TAGS": "matcher eu-west",
        "MOSAIK_BOOTSTRAP": f"{PEER}@10.0.0.5:7400 {PEER}@[fd00::1]:7401",
        "MOSAIK_METRICS_ADDR": "0.0.0.0:9100",
    }
    assert render_environment(env).splitlines() == [
        f'MOSAIK_BOOTSTRAP="{PEER}@10.0.0.5:7400 {PEER}@[fd00::1]:7401"',
        'MOSAIK_METRICS_ADDR="0.0.0.0:9100"',
        'MOSAIK_NETWORK="orders"',
        'MOSAIK_TAGS="matcher eu-west"',
    ]


def test_no_mosaik_parameters_means_image_defaults() -> None:
    params = split_cmdline("console=ttyS0 quiet mosaikx=1 network=foo")
    assert node_environment(params, "/proc/cmdline") == {}
    assert render_environment({}) == ""


def test_last_value_wins_and_quoted_values_are_unquoted() -> None:
    params = split_cmdline('mosaik.network=a mosaik.log="debug" mosaik.network=b')
    assert node_environment(params, "cmdline") == {"MOSAIK_NETWORK": "b", "MOSAIK_LOG": "debug"}


@pytest.mark.parametrize(
    ("cmdline", "message"),
    [
        ("mosaik.netwrk=x", "unknown key 'mosaik.netwrk'"),
        ("mosaik.network", "needs a value"),
        ("mosaik.network=", "needs a value"),
        ('mosaik.network="a b"', "not a network name"),
        ("mosaik.network=a$(reboot)", "not a network name"),
        ("mosaik.tags=ok,bad/tag", "tag 'bad/tag'"),
        (f"mosaik.bootstrap={PEER}", "not <peer-id>@host:port"),
        ("mosaik.bootstrap=abc@10.0.0.1:7400", "not <peer-id>@host:port"),
        (f"mosaik.bootstrap={PEER}@10.0.0.1:99999", "not <peer-id>@host:port"),
        ("mosaik.bind=7400", "not host:port"),
        ("mosaik.log=verbose", "not one of"),
    ],
)
def test_bad_parameters_are_refused_with_the_key(cmdline: str, message: str) -> None:
    with pytest.raises(GuestConfigError, match="cmdline") as info:
        node_environment(split_cmdline(cmdline), "cmdline")
    assert message in str(info.value)


def test_config_drive_words_allow_lines_and_comments() -> None:
    text = "# node 3\nmosaik.network=orders\nmosaik.tags=a,b  # roles\n\0\0garbage"
    assert drive_words(text.split("\0")[0]) == [
        ("mosaik.network", "orders"),
        ("mosaik.tags", "a,b"),
    ]


def _system(tmp_path: Path, cmdline: str, drive: str | None) -> list[str]:
    (tmp_path / "cmdline").write_text(cmdline)
    block = tmp_path / "sys/block"
    (block / "vda").mkdir(parents=True)
    (block / "vda/serial").write_text("other-disk\n")
    (tmp_path / "dev").mkdir()
    if drive is not None:
        (block / "vdb").mkdir()
        (block / "vdb/serial").write_text("mosaik-config\n")
        (tmp_path / "dev/vdb").write_bytes(drive.encode() + b"\0" * 512)
    out = tmp_path / "run/mosaik/node.env"
    return [
        "env",
        f"--cmdline={tmp_path / 'cmdline'}",
        f"--sys-block={block}",
        f"--dev={tmp_path / 'dev'}",
        f"--out={out}",
    ]


def test_env_command_merges_drive_and_cmdline_cmdline_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _system(
        tmp_path, "console=ttyS0 mosaik.network=measured\n", "mosaik.network=drive\nmosaik.tags=x"
    )
    assert guestconfig.main(argv) == 0
    out = tmp_path / "run/mosaik/node.env"
    assert out.read_text() == 'MOSAIK_NETWORK="measured"\nMOSAIK_TAGS="x"\n'
    assert out.stat().st_mode & 0o777 == 0o600
    assert "config drive" in capsys.readouterr().out
    assert find_config_drive(tmp_path / "sys/block") == "vdb"


def test_env_command_fails_on_a_bad_parameter_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _system(tmp_path, "mosaik.tagz=x\n", None)
    assert guestconfig.main(argv) == 2
    assert "unknown key 'mosaik.tagz'" in capsys.readouterr().err
    assert not (tmp_path / "run/mosaik/node.env").exists()


def test_script_runs_standalone_with_only_the_standard_library(tmp_path: Path) -> None:
    argv = _system(tmp_path, "mosaik.network=standalone", None)
    script = Path(guestconfig.__file__)
    result = subprocess.run(
        [sys.executable, "-I", str(script), *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run/mosaik/node.env").read_text() == 'MOSAIK_NETWORK="standalone"\n'


def test_tdx_guest_flag_detection() -> None:
    assert is_tdx_guest("processor\t: 0\nflags\t\t: fpu vme tdx_guest x2apic\n")
    assert not is_tdx_guest("processor\t: 0\nflags\t\t: fpu vme hypervisor\n")
    assert not is_tdx_guest("")


def test_tdx_command_reports_status_and_names_a_missing_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu vme hypervisor\n")
    absent = ["tdx", f"--cpuinfo={cpuinfo}", f"--tsm-report={tmp_path / 'none'}"]
    assert guestconfig.main(absent) == 0
    assert "tdx=no (not a TD guest)" in capsys.readouterr().out
    report = tmp_path / "report"
    report.mkdir()
    argv = ["tdx", f"--cpuinfo={cpuinfo}", f"--tsm-report={report}", "--user=no-such-user"]
    assert guestconfig.main(argv) == 2
    assert "user 'no-such-user' does not exist" in capsys.readouterr().err
