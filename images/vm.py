"""Booting a built image: the command line and environment of its plain-VM launch script."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from images.artifacts import RUN_VM, read_manifest
from images.errors import ArtifactError
from images.tools import RUN_TOOLS, require_tools


@dataclass(frozen=True, slots=True)
class VmOptions:
    tcg: bool = False
    udp_port: int | None = None
    http_port: int | None = None
    serial_log: Path | None = None
    append: str = ""
    memory: str | None = None
    config_drive: Path | None = None


def vm_command(directory: Path, options: VmOptions) -> tuple[list[str], dict[str, str]]:
    """``run-vm.sh`` of ``directory`` and the environment that carries ``options`` to it."""
    require_tools(RUN_TOOLS)
    read_manifest(directory)
    script = directory / RUN_VM
    if not script.is_file():
        raise ArtifactError(f"{script}: launch script missing")
    env = dict(os.environ)
    if options.tcg:
        env["MOSAIK_ACCEL"] = "tcg"
    if options.udp_port is not None:
        env["MOSAIK_UDP_PORT"] = str(options.udp_port)
    if options.http_port is not None:
        env["MOSAIK_HTTP_PORT"] = str(options.http_port)
    if options.serial_log is not None:
        env["MOSAIK_SERIAL"] = f"file:{options.serial_log}"
    if options.append:
        env["MOSAIK_APPEND"] = options.append
    if options.memory:
        env["MOSAIK_MEMORY"] = options.memory
    if options.config_drive is not None:
        env["MOSAIK_CONFIG_DRIVE"] = str(options.config_drive.resolve())
    return ["/bin/sh", str(script)], env
