#!/usr/bin/python3
"""Inside the guest: turn ``mosaik.*`` boot parameters into the node's EnvironmentFile.

This file is copied verbatim into the image as ``/usr/lib/mosaik/mosaik-guest-config`` and
run by ``mosaik-config.service`` (as root, before the node starts), so it uses the standard
library only. Two commands:

``env``  reads ``mosaik.*`` parameters from a config drive (a virtio disk whose serial is
         ``mosaik-config`` holding the same ``mosaik.key=value`` words as plain text) and then
         from the kernel command line (``/proc/cmdline``; it wins: it is measured into RTMR2,
         the drive is not), validates every value and writes ``MOSAIK_*`` lines to the
         EnvironmentFile. Any unknown ``mosaik.*`` key or bad value is an error: the unit
         fails and the node does not start on a configuration it would misread.
``tdx``  loads ``tdx_guest`` when the CPU is a TD guest, lets the node's user create quote
         entries under ``/sys/kernel/config/tsm/report``, and prints one status line.

Keys: mosaik.network (name), mosaik.bootstrap (comma-separated <peer-id>@host:port),
mosaik.tags (comma-separated), mosaik.bind and mosaik.metrics (host:port), mosaik.log
(debug|info|warning|error). A key given twice keeps its last value.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

CONFIG_DRIVE_SERIAL = "mosaik-config"
DRIVE_READ_LIMIT = 64 * 1024
PREFIX = "mosaik."

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})")
_ADDR = re.compile(_HOST.pattern + r":(\d{1,5})")
_PEER = re.compile(r"[0-9a-f]{64}@" + _ADDR.pattern)
_LEVELS = ("debug", "info", "warning", "error")


class GuestConfigError(Exception):
    """A boot parameter that is unknown or malformed; names its source and key."""


def split_cmdline(text: str) -> list[tuple[str, str | None]]:
    """Parameters of a kernel command line as the kernel splits them (``lib/cmdline.c``).

    Words are separated by whitespace outside double quotes; ``key="a b"`` and ``"key=a b"``
    both give ``("key", "a b")``; a word without ``=`` has the value ``None``; ``--`` ends
    the kernel's parameters (the rest belongs to init).
    """
    params: list[tuple[str, str | None]] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return params
        word, position = _next_word(text, position)
        if word == "--":
            return params
        params.append(_unquote(word))


def _next_word(text: str, start: int) -> tuple[str, int]:
    in_quote = False
    position = start
    while position < len(text):
        char = text[position]
        if char.isspace() and not in_quote:
            break
        if char == '"':
            in_quote = not in_quote
        position += 1
    return text[start:position], position


def _unquote(word: str) -> tuple[str, str | None]:
    quoted = word.startswith('"')
    if quoted:
        word = word[1:]
    key, equals, value = word.partition("=")
    if not equals:
        return (key[:-1] if quoted and key.endswith('"') else key), None
    if value.startswith('"'):
        value = value[1:]
        if value.endswith('"'):
            value = value[:-1]
    elif quoted and value.endswith('"'):
        value = value[:-1]
    return key, value


def drive_words(text: str) -> list[tuple[str, str | None]]:
    """Parameters of a config drive: command-line words over lines, ``#`` starts a comment."""
    params: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        params += split_cmdline(line.split("#", 1)[0])
    return params


def node_environment(params: Iterable[tuple[str, str | None]], source: str) -> dict[str, str]:
    """``MOSAIK_*`` variables from the ``mosaik.*`` parameters (others are ignored)."""
    env: dict[str, str] = {}
    for key, value in params:
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :]
        if name not in _KEYS:
            known = ", ".join(PREFIX + k for k in sorted(_KEYS))
            raise GuestConfigError(f"{source}: unknown key {key!r} (known: {known})")
        if value is None or value == "":
            raise GuestConfigError(f"{source}: {key} needs a value ({key}=...)")
        variable, check = _KEYS[name]
        env[variable] = check(value, f"{source}: {key}")
    return env


def _network(value: str, where: str) -> str:
    if not _NAME.fullmatch(value):
        raise GuestConfigError(f"{where}: {value!r} is not a network name ([A-Za-z0-9._-], <= 64)")
    return value


def _tags(value: str, where: str) -> str:
    tags = [tag for tag in value.split(",") if tag]
    for tag in tags:
        if not _NAME.fullmatch(tag):
            raise GuestConfigError(f"{where}: tag {tag!r} is not a name ([A-Za-z0-9._-], <= 64)")
    return " ".join(tags)


def _bootstrap(value: str, where: str) -> str:
    peers = [peer for peer in value.split(",") if peer]
    for peer in peers:
        match = _PEER.fullmatch(peer)
        if match is None or not _port_ok(match.group(2)):
            raise GuestConfigError(
                f"{where}: {peer!r} is not <peer-id>@host:port (64 lowercase hex digits)"
            )
    return " ".join(peers)


def _addr(value: str, where: str) -> str:
    match = _ADDR.fullmatch(value)
    if match is None or not _port_ok(match.group(2)):
        raise GuestConfigError(f"{where}: {value!r} is not host:port")
    return value


def _level(value: str, where: str) -> str:
    if value not in _LEVELS:
        raise GuestConfigError(f"{where}: {value!r} is not one of {', '.join(_LEVELS)}")
    return value


def _port_ok(text: str) -> bool:
    return 0 <= int(text) <= 65535


_KEYS = {
    "network": ("MOSAIK_NETWORK", _network),
    "bootstrap": ("MOSAIK_BOOTSTRAP", _bootstrap),
    "tags": ("MOSAIK_TAGS", _tags),
    "bind": ("MOSAIK_BIND", _addr),
    "metrics": ("MOSAIK_METRICS_ADDR", _addr),
    "log": ("MOSAIK_LOG", _level),
}


def render_environment(env: dict[str, str]) -> str:
    """EnvironmentFile text, one sorted ``KEY="value"`` per line (values are pre-validated)."""
    return "".join(f'{key}="{env[key]}"\n' for key in sorted(env))


def find_config_drive(sys_block: Path) -> str | None:
    """The name of the block device whose serial is ``mosaik-config``, if any."""
    try:
        devices = sorted(sys_block.iterdir())
    except OSError:
        return None
    for device in devices:
        try:
            serial = (device / "serial").read_text().strip()
        except OSError:
            continue
        if serial == CONFIG_DRIVE_SERIAL:
            return device.name
    return None


def read_config_drive(path: Path) -> str:
    """The drive's text: its bytes up to the first NUL (or the read limit)."""
    with path.open("rb") as handle:
        raw = handle.read(DRIVE_READ_LIMIT)
    try:
        return raw.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise GuestConfigError(f"{path}: the config drive is not UTF-8 text") from None


def is_tdx_guest(cpuinfo: str) -> bool:
    """Whether ``/proc/cpuinfo`` lists the ``tdx_guest`` CPU flag (the kernel runs in a TD)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return "tdx_guest" in value.split()
    return False


def _read_optional(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _mounted(mounts: str, fstype: str) -> bool:
    return any(
        len(f) > 2 and f[2] == fstype for f in (line.split() for line in mounts.splitlines())
    )


def _command_env(args: argparse.Namespace) -> int:
    env: dict[str, str] = {}
    sources: list[str] = []
    drive = find_config_drive(Path(args.sys_block))
    if drive is not None:
        device = Path(args.dev) / drive
        env = node_environment(drive_words(read_config_drive(device)), f"config drive {device}")
        sources.append(f"config drive {device}")
    env.update(node_environment(split_cmdline(Path(args.cmdline).read_text()), args.cmdline))
    sources.append(args.cmdline)
    out = Path(args.out)
    out.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(render_environment(env))
    keys = " ".join(f"{k}={env[k]!r}" for k in sorted(env)) or "(image defaults)"
    print(f"mosaik-guest-config: from {', '.join(sources)}: {keys}")
    return 0


def _command_tdx(args: argparse.Namespace) -> int:
    tdx = is_tdx_guest(Path(args.cpuinfo).read_text())
    if tdx:
        subprocess.run(["modprobe", "tdx_guest"], check=False)
    modules = _read_optional(Path("/proc/modules"))  # absent: a kernel without modules
    loaded = {line.split()[0] for line in modules.splitlines() if line.strip()}
    report = Path(args.tsm_report)
    if report.is_dir():
        import pwd

        try:
            user = pwd.getpwnam(args.user)
        except KeyError:
            raise GuestConfigError(f"user {args.user!r} does not exist") from None
        os.chown(report, user.pw_uid, user.pw_gid)
        os.chmod(report, 0o700)
    configfs = _mounted(_read_optional(Path("/proc/mounts")), "configfs")
    print(
        "mosaik-guest-config: "
        f"tdx={'yes' if tdx else 'no (not a TD guest)'} "
        f"tdx_guest={'loaded' if 'tdx_guest' in loaded else 'not loaded'} "
        f"tsm={'loaded' if 'tsm' in loaded else 'not loaded'} "
        f"configfs={'mounted' if configfs else 'not mounted'} "
        f"tsm_report={'ready' if report.is_dir() else 'absent'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mosaik-guest-config", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser("env", help="write the node's EnvironmentFile")
    env.add_argument("--cmdline", default="/proc/cmdline")
    env.add_argument("--sys-block", default="/sys/block")
    env.add_argument("--dev", default="/dev")
    env.add_argument("--out", default="/run/mosaik/node.env")
    tdx = commands.add_parser("tdx", help="load tdx_guest in a TD and open the tsm report dir")
    tdx.add_argument("--cpuinfo", default="/proc/cpuinfo")
    tdx.add_argument("--tsm-report", default="/sys/kernel/config/tsm/report")
    tdx.add_argument("--user", default="mosaik")
    args = parser.parse_args(argv)
    try:
        return _command_env(args) if args.command == "env" else _command_tdx(args)
    except GuestConfigError as exc:
        print(f"mosaik-guest-config: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mosaik-guest-config: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
