"""Options shared by several commands, defined once."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

from node.errors import ConfigError
from node.transport.addr import PeerAddr, SocketAddr


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Read a TOML file into the command's defaults: flags and MOSAIK_* env vars still win."""
    if value is None:
        return None
    try:
        data = tomllib.loads(Path(value).read_text())
    except OSError as exc:
        raise click.BadParameter(f"cannot read {value}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{value} is not valid TOML: {exc}") from None
    raw: dict[str, Any] = data.get("node", data)
    # Keys are the command's visible options, in either spelling (peer-ttl or peer_ttl).
    table = {key.replace("-", "_"): item for key, item in raw.items()}
    known = {
        p.name
        for p in ctx.command.params
        if isinstance(p, click.Option) and p.name and p.expose_value and not p.hidden
    }
    unknown = set(table) - known
    if unknown:
        raise click.BadParameter(
            f"{value}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    ctx.default_map = {**(ctx.default_map or {}), **table}
    return value


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar="MOSAIK_CONFIG",
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="TOML file with defaults (a [node] table); flags and MOSAIK_* variables override it.",
)


def parse_socket_addr(_ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return SocketAddr.parse(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def parse_peer_addrs(_ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    try:
        return tuple(PeerAddr.parse(v) for v in value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def parse_socket_addrs(_ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    try:
        return tuple(SocketAddr.parse(v) for v in value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param=param) from None
