"""The ``mosaik`` console script. Commands parse and validate, then call library code."""

from __future__ import annotations

import logging
import os

import click

from attestation.cli import attest
from attestation.measure.cli import measure_command
from images.cli import image_group
from node._version import __version__
from node.cli.node_cmds import node_group
from node.deploy.cli import deploy_group
from node.primitives.digest import Digest
from node.tickets.cli import ticket_group


@click.group()
@click.version_option(__version__, prog_name="mosaik")
@click.option(
    "--log-level",
    default="warning",
    envvar="MOSAIK_LOG",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log level of messages on stderr.",
)
def main(log_level: str) -> None:
    """mosaik: self-organizing distributed systems and their TDX appliance toolchain."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aioquic logs every handshake at INFO; its warnings still show.
    logging.getLogger("quic").setLevel(max(logging.WARNING, logging.getLogger().level))


@main.command("id")
@click.argument("name")
def intent_id(name: str) -> None:
    """Print the intent-addressed id (blake3) of NAME.

    Examples:

      mosaik id orders
    """
    click.echo(Digest.from_name(name).hex())


@main.command("demo")
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(3, 16))
def demo(nodes: int) -> None:
    """Start a local cluster of node processes on loopback and show how it organizes itself.

    Examples:

      mosaik demo
    """
    from node.demo.cluster import run_demo

    raise SystemExit(run_demo(nodes, time_factor=float(os.environ.get("TIME_FACTOR", "1"))))


main.add_command(node_group)
main.add_command(attest)
main.add_command(measure_command)
main.add_command(ticket_group)
main.add_command(image_group)
main.add_command(deploy_group)
