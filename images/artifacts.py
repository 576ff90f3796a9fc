"""The output directory: artifacts, launch scripts, measurements and the manifest.

``manifest.json`` lists every other artifact's sha256 and size with the facts a verifier
needs to rebuild and re-measure (recipe, lock digest, kernel, command line, VM size); it holds
no time, duration or host path, so two builds from the same lock and cache write the same
bytes.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from images.errors import ArtifactError, ImageError
from images.guestconfig import CONFIG_DRIVE_SERIAL
from images.recipe import Recipe
from images.render import GENERATED, render_launcher
from images.tools import sha256_file

KERNEL: Final = "vmlinuz"
INITRD: Final = "initrd.img"
FIRMWARE: Final = "OVMF.fd"
MEASUREMENTS: Final = "measurements.json"
RUN_VM: Final = "run-vm.sh"
RUN_TDX: Final = "run-tdx.sh"
MANIFEST: Final = "manifest.json"
ARTIFACTS: Final = (KERNEL, INITRD, FIRMWARE, MEASUREMENTS, RUN_VM, RUN_TDX)
MANIFEST_FORMAT: Final = 1


def write_launchers(recipe: Recipe, out: Path) -> None:
    context = {
        "generated": GENERATED.format(recipe=recipe.name),
        "image_name": recipe.image_name,
        "cmdline_quoted": shlex.quote(recipe.cmdline),
        "memory": recipe.memory,
        "cpus": recipe.cpus,
        "udp_port": recipe.node.udp_port,
        "http_port": recipe.node.http_port,
        "quote_port": recipe.quote_port,
        "firmware": FIRMWARE,
        "kernel": KERNEL,
        "initrd": INITRD,
        "config_serial": CONFIG_DRIVE_SERIAL,
    }
    for name in (RUN_VM, RUN_TDX):
        path = out / name
        path.write_text(render_launcher(f"{name}.j2", context))
        path.chmod(0o755)


def measure_artifacts(
    directory: Path, cmdline: str, memory: str, cpus: int, qemu_version: str | None
) -> dict[str, Any]:
    """The expected TDX registers of the image in ``directory`` (attestation.measure)."""
    from attestation.measure import MeasureError, measure

    try:
        measured = measure(
            firmware=directory / FIRMWARE,
            kernel=directory / KERNEL,
            initrd=directory / INITRD,
            cmdline=cmdline,
            memory=memory,
            cpus=cpus,
            qemu_version=qemu_version,
        )
    except MeasureError as exc:
        raise ImageError(f"measuring the image: {exc}") from None
    document: dict[str, Any] = dict(measured.to_json())
    # Inputs are named by artifact, not by where this build happened to write them.
    for record in document.get("inputs", {}).values():
        if isinstance(record, dict) and "path" in record:
            record["path"] = Path(str(record["path"])).name
    return document


def write_measurements(recipe: Recipe, out: Path) -> str:
    """measurements.json for the TDX launch; a one-line summary for the progress display."""
    try:
        import attestation.measure  # noqa: F401
    except ImportError:
        message = "measurement skipped: the attestation.measure library is not installed"
        (out / MEASUREMENTS).write_text(json.dumps({"skipped": message}, indent=2) + "\n")
        return message
    document = measure_artifacts(
        out, recipe.cmdline, recipe.memory, recipe.cpus, recipe.qemu_version
    )
    (out / MEASUREMENTS).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    registers = document.get("measurements", {})
    return " ".join(
        f"{name}={values['expected_any'][0][:12]}" for name, values in registers.items()
    )


def write_manifest(out: Path, facts: Mapping[str, Any]) -> dict[str, Any]:
    artifacts = {}
    for name in ARTIFACTS:
        path = out / name
        if not path.is_file():
            raise ArtifactError(f"{path}: artifact missing")
        artifacts[name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    manifest = {"format": MANIFEST_FORMAT, **facts, "artifacts": artifacts}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: no manifest; is {directory} the --out of `image build`?"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path}: not a format-{MANIFEST_FORMAT} image manifest")
    return document


def boot_settings(manifest: Mapping[str, Any], directory: Path) -> tuple[str, str, int]:
    """(kernel command line, memory, vCPUs) the image was measured for."""
    try:
        return str(manifest["cmdline"]), str(manifest["vm"]["memory"]), int(manifest["vm"]["cpus"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{directory / MANIFEST}: no valid boot setting {exc}") from None


def verify_artifacts(directory: Path) -> list[str]:
    """Artifacts whose sha256 differs from the manifest (an empty list: all match)."""
    manifest = read_manifest(directory)
    problems = []
    for name, record in sorted(manifest["artifacts"].items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != record["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems
