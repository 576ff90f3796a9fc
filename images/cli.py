"""``mosaik image``: build, boot and measure TDX guest images (commands call library code)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import click

from images.artifacts import (
    MEASUREMENTS,
    boot_settings,
    measure_artifacts,
    read_manifest,
    verify_artifacts,
)
from images.build import DEFAULT_CACHE, BuildOptions, plan
from images.errors import ImageError
from images.recipe import load_recipe
from images.vm import VmOptions, vm_command


@click.group("image")
def image_group() -> None:
    """Build, boot and measure TDX guest images of the node."""


@image_group.command("build")
@click.argument("recipe")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory.",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=str(DEFAULT_CACHE),
    show_default=True,
    envvar="MOSAIK_IMAGE_CACHE",
    help="Cache of downloaded .debs and wheels (never inside the repository).",
)
@click.option(
    "--update-lock", is_flag=True, help="Resolve the inputs anew and rewrite packages.lock."
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build (default: $TMPDIR).",
)
@click.option("--keep-work", is_flag=True, help="Keep the work directory (root filesystem, logs).")
@click.option(
    "--source",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Source tree to build the node runtime from (default: this installation's).",
)
def build(
    recipe: str,
    out: Path,
    cache: Path,
    update_lock: bool,
    work_dir: Path | None,
    keep_work: bool,
    source: Path | None,
) -> None:
    """Build RECIPE (a recipe directory or a name under images/) into --out.

    Writes vmlinuz, initrd.img, OVMF.fd, measurements.json, run-tdx.sh, run-vm.sh and
    manifest.json (every artifact's sha256). Runs as root; installs nothing on the host.

    Examples:

      mosaik image build debian-trixie --out build/image

      mosaik image build images/debian-trixie --out build/image --update-lock
    """
    try:
        options = BuildOptions(
            recipe=load_recipe(recipe),
            out=out,
            cache=cache.expanduser().resolve(),
            update_lock=update_lock,
            work_root=work_dir,
            keep_work=keep_work,
            source=source,
        )
        steps, cleanup = plan(options)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from None
    started = time.monotonic()
    try:
        for index, step in enumerate(steps, start=1):
            click.echo(f"[{index:>2}/{len(steps)}] {step.title} ...", nl=False)
            began = time.monotonic()
            try:
                summary = step.run()
            except ImageError as exc:
                click.echo(click.style(f" failed after {time.monotonic() - began:.1f} s", fg="red"))
                raise click.ClickException(str(exc)) from None
            click.echo(click.style(f" {time.monotonic() - began:.1f} s", fg="green"))
            click.echo(f"        {summary}")
    finally:
        cleanup()
    click.echo(f"built {options.recipe.name} into {out} in {time.monotonic() - started:.1f} s")


@image_group.command("run")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--tcg", is_flag=True, help="Use TCG (software emulation) even if KVM is available.")
@click.option(
    "--udp-port", type=click.IntRange(1, 65535), help="Host UDP port for the node's QUIC port."
)
@click.option(
    "--http-port",
    type=click.IntRange(1, 65535),
    help="Host TCP port for /healthz, /status, /metrics.",
)
@click.option(
    "--serial-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the serial console here instead of stdout.",
)
@click.option("--append", default="", help="Extra kernel parameters, e.g. 'mosaik.network=demo'.")
@click.option("--memory", help="Guest RAM (default: the recipe's).")
@click.option(
    "--config-drive",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Text file of mosaik.key=value words, attached as the config drive.",
)
def run_image(
    directory: Path,
    tcg: bool,
    udp_port: int | None,
    http_port: int | None,
    serial_log: Path | None,
    append: str,
    memory: str | None,
    config_drive: Path | None,
) -> None:
    """Boot the image in DIRECTORY as a plain VM under QEMU (KVM, or TCG with --tcg).

    The node's UDP port and its metrics/admin HTTP port are forwarded from the host.

    Examples:

      mosaik image run build/image --tcg --http-port 19100

      mosaik image run build/image --append 'mosaik.network=demo mosaik.tags=a,b'
    """
    options = VmOptions(tcg, udp_port, http_port, serial_log, append, memory, config_drive)
    try:
        argv, env = vm_command(directory, options)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from None
    process = subprocess.Popen(argv, env=env)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        code = process.wait()
    raise SystemExit(code)


@image_group.command("measure")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--qemu-version", help="The TDX host's QEMU version (default: the recipe's, if any).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole measurements document.")
def measure_image(directory: Path, qemu_version: str | None, as_json: bool) -> None:
    """Recompute the TDX measurements of a built image and compare them with measurements.json.

    Checks every artifact against the manifest's sha256 first. Exits 1 on any difference.

    Examples:

      mosaik image measure build/image
    """
    try:
        problems = verify_artifacts(directory)
        manifest = read_manifest(directory)
        cmdline, memory, cpus = boot_settings(manifest, directory)
        document = measure_artifacts(directory, cmdline, memory, cpus, qemu_version)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        for name, values in document["measurements"].items():
            click.echo(f"{name:<6} {values['expected_any'][0]}")
        for note in document.get("assumptions", {}).get("notes", []):
            click.echo(f"note: {note}")
    # Another QEMU version gives other registers by design: compare only like with like.
    stored = None if qemu_version else _stored_registers(directory / MEASUREMENTS)
    if stored is not None and stored != document["measurements"]:
        problems.append(f"{MEASUREMENTS}: registers differ from the recomputed ones")
    for problem in problems:
        click.echo(click.style(f"mismatch: {problem}", fg="red"), err=True)
    if problems:
        raise SystemExit(1)
    click.echo(
        "artifacts match the manifest; measurements match measurements.json"
        if stored is not None
        else "artifacts match the manifest"
    )


def _stored_registers(path: Path) -> object | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document.get("measurements") if isinstance(document, dict) else None
