"""``mosaik node``: keys, identity and running a node."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import click

from node.admin import fetch_status
from node.cli.apps import App, load_app, run_apps
from node.cli.options import (
    config_option,
    parse_peer_addrs,
    parse_socket_addr,
    parse_socket_addrs,
)
from node.discovery.config import DiscoveryConfig
from node.discovery.service import config_with_ttl
from node.errors import MosaikError
from node.network import Network
from node.primitives.keys import SecretKey
from node.transport.addr import PeerAddr, SocketAddr

# What ``--counter-group`` runs: the demo's replicated counter, loaded only when asked for.
COUNTER_APP = "node.demo.counter:run"


@click.group("node")
def node_group() -> None:
    """Run a node and manage its identity."""


@node_group.command("keygen")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Key file.")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
def keygen(out: str, force: bool) -> None:
    """Generate a node secret key (mode 0600) and print its peer id.

    Examples:

      mosaik node keygen --out node.key
    """
    key = SecretKey.generate()
    try:
        key.to_file(out, overwrite=force)
    except MosaikError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(key.peer_id.hex())


@node_group.command("id")
@click.argument("key_file", type=click.Path(dir_okay=False))
def node_id(key_file: str) -> None:
    """Print the peer id of a secret key file.

    Examples:

      mosaik node id node.key
    """
    try:
        click.echo(SecretKey.from_file(key_file).peer_id.hex())
    except MosaikError as exc:
        raise click.ClickException(str(exc)) from None


@node_group.command("run")
@config_option
@click.option("--network", required=True, envvar="MOSAIK_NETWORK", help="Network name.")
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False),
    envvar="MOSAIK_SECRET_FILE",
    help="Secret key file (default: a fresh key each run).",
)
@click.option(
    "--bind",
    default="0.0.0.0:7400",
    show_default=True,
    envvar="MOSAIK_BIND",
    callback=parse_socket_addr,
    help="UDP address for QUIC.",
)
@click.option(
    "--bootstrap",
    multiple=True,
    envvar="MOSAIK_BOOTSTRAP",
    callback=parse_peer_addrs,
    help="Seed peer <peer-id>@host:port (repeatable; env: space-separated).",
)
@click.option(
    "--advertise",
    multiple=True,
    envvar="MOSAIK_ADVERTISE",
    callback=parse_socket_addrs,
    help="host:port peers should dial (repeatable; env: space-separated). Default: the bound "
    "address, or this host's addresses when bound to 0.0.0.0.",
)
@click.option("--tag", "tags", multiple=True, envvar="MOSAIK_TAGS", help="Role tag (repeatable).")
@click.option(
    "--metrics-addr",
    envvar="MOSAIK_METRICS_ADDR",
    callback=parse_socket_addr,
    help="HTTP address for /metrics, /status and /healthz.",
)
@click.option(
    "--data-dir", type=click.Path(file_okay=False), envvar="MOSAIK_DATA_DIR", help="State dir."
)
@click.option(
    "--peer-ttl",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    envvar="MOSAIK_PEER_TTL",
    help="Seconds without a fresh entry before a peer is purged (re-announce at a third).",
)
@click.option(
    "--mdns/--no-mdns",
    default=False,
    envvar="MOSAIK_MDNS",
    help="Also find peers of the network on the LAN with mDNS (off by default).",
)
@click.option(
    "--counter-group",
    is_flag=True,
    envvar="MOSAIK_COUNTER_GROUP",
    help="Join the replicated counter demo group (3 members) and increment it twice a second.",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    hidden=True,
    help="Also run MODULE:CALLABLE, an async callable taking the Network (repeatable).",
)
def run(
    network: str,
    secret_file: str | None,
    bind: SocketAddr,
    bootstrap: tuple[PeerAddr, ...],
    advertise: tuple[SocketAddr, ...],
    tags: tuple[str, ...],
    metrics_addr: SocketAddr | None,
    data_dir: str | None,
    peer_ttl: float,
    mdns: bool,
    counter_group: bool,
    apps: tuple[str, ...],
) -> None:
    """Run a node until SIGTERM or SIGINT, then leave gracefully (exit 0).

    Prints one line when ready: peer id, QUIC address and admin address.

    Examples:

      mosaik node run --network demo --secret-file node.key --bind 0.0.0.0:7400

      MOSAIK_NETWORK=demo MOSAIK_BOOTSTRAP=<id>@10.0.0.5:7400 mosaik node run --tag matcher
    """
    try:
        key = SecretKey.from_file(secret_file) if secret_file else None
        discovery = config_with_ttl(peer_ttl)
        directory = Path(data_dir) if data_dir else None
        specs = [*([COUNTER_APP] if counter_group else []), *apps]
        loaded = [(spec, load_app(spec)) for spec in specs]
        asyncio.run(
            _run(
                network,
                key,
                bind,
                bootstrap,
                advertise,
                tags,
                metrics_addr,
                directory,
                discovery,
                mdns,
                loaded,
            )
        )
    except MosaikError as exc:
        raise click.ClickException(str(exc)) from None


async def _run(
    network: str,
    key: SecretKey | None,
    bind: SocketAddr,
    bootstrap: tuple[PeerAddr, ...],
    advertise: tuple[SocketAddr, ...],
    tags: tuple[str, ...],
    metrics_addr: SocketAddr | None,
    data_dir: Path | None,
    discovery: DiscoveryConfig,
    mdns: bool,
    apps: list[tuple[str, App]],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Network.create(
        network,
        secret_key=key,
        bind=bind,
        bootstrap=bootstrap,
        advertise=[str(a) for a in advertise],
        tags=tags,
        data_dir=data_dir,
        metrics_addr=metrics_addr,
        discovery=discovery,
        mdns=mdns,
    ) as net:
        admin = net.admin_addr
        click.echo(
            f"node ready: peer_id={net.peer_id.hex()} address={net.local_addr} "
            f"admin={admin if admin else '-'} network={network}"
        )
        await run_apps(net, apps, stop)
        logging.getLogger("mosaik").info("stopping")


@node_group.command("inspect")
@click.argument("admin_addr", callback=parse_socket_addr)
@click.option("--json", "as_json", is_flag=True, help="Print the raw status JSON.")
def inspect(admin_addr: SocketAddr, as_json: bool) -> None:
    """Show a running node's identity and connections from its admin address.

    Examples:

      mosaik node inspect 127.0.0.1:9000
    """
    try:
        status = fetch_status(admin_addr)
    except MosaikError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(status, indent=2, sort_keys=True))
        return
    click.echo(f"peer     {status['peer_id']}")
    click.echo(f"network  {status['network']} ({status['network_id'][:10]})")
    click.echo(f"address  {status['address']}   uptime {status['uptime_s']:.0f} s")
    click.echo(f"connections ({len(status['connections'])}):")
    for conn in status["connections"]:
        way = "out" if conn["dialer"] else "in "
        click.echo(f"  {way} {conn['peer_id'][:16]}  {conn['alpn']:<24} {conn['remote']}")
    groups = status.get("groups", [])
    if groups:
        click.echo(f"groups ({len(groups)}):")
    for group in groups:
        leader = (group["leader"] or "none")[:16]
        click.echo(
            f"  {group['group_id'][:16]}  {group['role']:<9} term {group['term']}  "
            f"leader {leader}  commit {group['commit_index']} applied {group['applied_index']}  "
            f"voters {len(group['voters'])} learners {len(group['learners'])}"
        )
        for peer, reason in group.get("refused_by", {}).items():
            click.echo(f"    refused by {peer[:16]}: {reason}")
