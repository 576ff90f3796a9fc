"""``mosaik attest``: get a quote, verify one, write and check policies.

Commands only parse, validate and call library code: usage errors are ``click.BadParameter``/
``click.UsageError``, attestation errors ``click.ClickException`` (exit 1). Anything simulated
is labelled SIMULATED.
"""

from __future__ import annotations

import asyncio
import json
import os
import string
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from attestation.errors import (
    AttestationError,
    InvalidArgument,
    PolicyError,
    ProviderUnavailable,
    VerificationFailed,
)
from attestation.policy import MeasurementRecord, Policy
from attestation.providers import TSM_REPORT_ROOT
from attestation.quote import Quote, parse_quote

_SIMULATED_LABEL = "SIMULATED TDX quote: made by the simulated platform, not by TDX hardware"


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "mosaik" / "simulated-tdx"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mosaik" / "collateral"


# -- parameter types (shared) --------------------------------------------------------------------


class TimeParam(click.ParamType[int]):
    """Unix seconds, ``now``, or ISO 8601 (no offset means UTC)."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text == "now":
            return int(time.time())
        if text.isdigit():
            return int(text)
        try:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is not Unix seconds, 'now' or ISO 8601", param, ctx)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return int(stamp.timestamp())


class HexParam(click.ParamType[bytes]):
    """Hex bytes (optional ``0x``) of at most ``max_size`` bytes."""

    name = "HEX"

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> bytes:
        if isinstance(value, bytes):
            return value
        text = str(value).strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        try:
            data = bytes.fromhex(text)
        except ValueError:
            self.fail(f"{value!r} is not hexadecimal", param, ctx)
        if not data or len(data) > self.max_size:
            self.fail(f"expected 1..{self.max_size} bytes, got {len(data)}", param, ctx)
        return data


TIME = TimeParam()
REPORT_DATA = HexParam(64)
_file = click.Path(dir_okay=False, path_type=Path)


def _read_quote(path: Path) -> Quote:
    """A quote file: raw bytes, or hex text as ``attest quote`` prints it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    text = data.strip()
    if text and len(text) % 2 == 0 and all(c in string.hexdigits.encode() for c in text):
        data = bytes.fromhex(text.decode())
    try:
        return parse_quote(data)
    except AttestationError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise click.BadParameter(f"{path} is not JSON: {exc}") from None


def _read_root_ca(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        except Exception as exc:  # cryptography's parse errors are not all ValueError
            raise click.BadParameter(f"{path} is not a PEM certificate: {exc}") from None
    return data


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the group -----------------------------------------------------------------------------------


@click.group("attest")
def attest() -> None:
    """TDX attestation: get quotes, verify them, manage verification policies."""


@attest.command("quote")
@click.option(
    "--report-data",
    required=True,
    type=REPORT_DATA,
    help="Report data to bind (hex, up to 64 bytes; zero-padded on the right to 64).",
)
@click.option("--out", type=_file, help="Write the raw quote here (default: hex on stdout).")
@click.option(
    "--simulate",
    is_flag=True,
    help="Use the SIMULATED platform (no TDX hardware); its quotes are labelled so.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Simulated platform keys (default: $XDG_STATE_HOME/mosaik/simulated-tdx).",
)
@click.option(
    "--measurements",
    type=_file,
    help="With --simulate: JSON of mrtd/rtmr0..rtmr3 (hex) the quote reports.",
)
@click.option(
    "--collateral-out",
    type=_file,
    help="With --simulate: write the platform's collateral (JSON) here.",
)
@click.option(
    "--root-ca-out", type=_file, help="With --simulate: write the simulated root CA (DER) here."
)
@click.option(
    "--at",
    "at",
    type=TIME,
    default="now",
    show_default=True,
    help="With --collateral-out: issue time of the collateral.",
)
@click.option(
    "--tsm-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=TSM_REPORT_ROOT,
    show_default=True,
    help="configfs-tsm report directory.",
)
def quote_cmd(
    report_data: bytes,
    out: Path | None,
    simulate: bool,
    state_dir: Path | None,
    measurements: Path | None,
    collateral_out: Path | None,
    root_ca_out: Path | None,
    at: int,
    tsm_root: Path,
) -> None:
    """Get a TDX quote over REPORT_DATA from configfs-tsm, or from the simulated platform.

    Without --simulate this needs a TDX guest (Linux >= 6.7, configfs-tsm) and refuses
    otherwise. With --simulate the quote comes from a SIMULATED platform whose keys live in
    --state-dir; it verifies only against that platform's root CA (--root-ca-out).

    Examples:

    \b
      mosaik attest quote --report-data 00ff --out quote.bin
      mosaik attest quote --simulate --report-data 00ff --out quote.bin \\
          --collateral-out collateral.json --root-ca-out root.der
    """
    from attestation.providers import SimulatedProvider, detect_provider

    simulated_only = {
        "--state-dir": state_dir,
        "--measurements": measurements,
        "--collateral-out": collateral_out,
        "--root-ca-out": root_ca_out,
    }
    if not simulate:
        given = [name for name, value in simulated_only.items() if value is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} only make sense with --simulate")
    registers = _read_register_file(measurements) if measurements else {}
    try:
        provider = detect_provider(
            (state_dir or _default_state_dir()) if simulate else None, tsm_root=tsm_root
        )
        padded = report_data.ljust(64, b"\x00")
        if isinstance(provider, SimulatedProvider):
            click.echo(_SIMULATED_LABEL, err=True)
            quote = provider.platform.quote(
                padded,
                mrtd=registers.get("mrtd"),
                rtmr0=registers.get("rtmr0"),
                rtmr1=registers.get("rtmr1"),
                rtmr2=registers.get("rtmr2"),
                rtmr3=registers.get("rtmr3"),
            )
            if collateral_out:
                _write(collateral_out, provider.platform.collateral_json(at).encode())
            if root_ca_out:
                _write(root_ca_out, provider.platform.root_ca_der)
        else:
            quote = provider.get_quote(padded)
    except ProviderUnavailable as exc:
        raise click.ClickException(f"{exc} (add --simulate)") from None
    except AttestationError as exc:
        raise click.ClickException(str(exc)) from None
    if out is None:
        click.echo(quote.hex())
    else:
        _write(out, quote)
        label = "SIMULATED" if simulate else provider.name
        click.echo(f"wrote a {len(quote)}-byte quote ({label}) to {out}", err=True)


def _read_register_file(path: Path) -> dict[str, bytes]:
    try:
        return MeasurementRecord.registers_from_document(_read_json(path))
    except PolicyError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--measurements") from None


@attest.command("verify")
@click.argument("quote_file", metavar="QUOTE", type=_file)
@click.option("--collateral", type=_file, help="Collateral JSON file (offline).")
@click.option("--pccs", metavar="URL", help="Fetch collateral from this PCCS/PCS (cached).")
@click.option("--policy", "policy_file", required=True, type=_file, help="Policy JSON file.")
@click.option(
    "--at",
    "at",
    type=TIME,
    default="now",
    show_default=True,
    help="Verification time (Unix seconds, ISO 8601 or 'now').",
)
@click.option(
    "--root-ca",
    type=_file,
    help="Trust this root CA (DER or PEM) instead of Intel's, e.g. the simulated one.",
)
@click.option(
    "--report-data", type=REPORT_DATA, help="Expected report data (hex, zero-padded to 64 bytes)."
)
@click.option(
    "--quote-time",
    type=TIME,
    help="When the quote was produced (for the policy's max_quote_age_seconds).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Collateral cache for --pccs (default: $XDG_CACHE_HOME/mosaik/collateral).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify_cmd(
    ctx: click.Context,
    quote_file: Path,
    collateral: Path | None,
    pccs: str | None,
    policy_file: Path,
    at: int,
    root_ca: Path | None,
    report_data: bytes | None,
    quote_time: int | None,
    cache_dir: Path | None,
    as_json: bool,
) -> None:
    """Verify a TDX QUOTE: DCAP signature chain and TCB status, then the policy.

    Exits 1 when the quote is rejected, naming the rule that failed.

    Examples:

    \b
      mosaik attest verify quote.bin --collateral collateral.json --policy policy.json
      mosaik attest verify quote.bin --pccs https://api.trustedservices.intel.com \\
          --policy policy.json --json
      mosaik attest verify quote.bin --collateral collateral.json --policy policy.json \\
          --root-ca root.der --at 2025-07-01T00:00:00Z
    """
    from attestation.collateral import Collateral, CollateralCache
    from attestation.verify import verify_quote

    if (collateral is None) == (pccs is None):
        raise click.UsageError("give exactly one of --collateral FILE or --pccs URL")
    quote = _read_quote(quote_file)
    try:
        policy = Policy.from_file(policy_file)
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--policy") from None
    if report_data is not None:
        policy = policy.with_report_data(report_data.ljust(64, b"\x00"))
    root_der = _read_root_ca(root_ca) if root_ca else None
    try:
        if collateral is not None:
            material = Collateral.from_file(collateral)
        elif pccs is not None:
            cache = CollateralCache(cache_dir or _default_cache_dir(), pccs)
            material = asyncio.run(cache.get(quote, at))
        report = verify_quote(
            quote, material, at, policy, root_ca_der=root_der, quote_time=quote_time
        )
    except VerificationFailed as exc:
        if as_json:
            click.echo(json.dumps({"accepted": False, "rule": exc.rule, "detail": exc.detail}))
            ctx.exit(1)
        raise click.ClickException(f"REJECTED by rule {exc.rule}: {exc.detail}") from None
    except InvalidArgument as exc:
        raise click.BadParameter(str(exc), param_hint="--root-ca") from None
    except AttestationError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"accepted": True, **report.to_dict()}, indent=2, sort_keys=True))
        return
    verdict = "ACCEPTED"
    if report.simulated:
        verdict += f" (SIMULATED: rooted at {report.root_ca}, not at Intel's root CA)"
    rows = [
        ("TCB status", report.tcb_status),
        ("advisories", ", ".join(report.advisory_ids) or "none"),
        ("measurement id", report.matched_measurement_id or "(policy accepts any)"),
        ("quote", f"v{report.quote_version}, {report.td_report_version}, FMSPC {report.fmspc}"),
        ("MRTD", report.mrtd),
        *((f"RTMR{i}", getattr(report, f"rtmr{i}")) for i in range(4)),
        ("report data", report.report_data),
        ("TD attributes", report.td_attributes),
        ("XFAM", report.xfam),
        ("root CA", report.root_ca),
        ("collateral until", _iso(report.collateral_expires_at)),
    ]
    click.echo(verdict)
    for label, value in rows:
        click.echo(f"  {label:<17}{value}")


# -- policies ------------------------------------------------------------------------------------


@attest.group("policy")
def policy_group() -> None:
    """Write and check verification policy files."""


@policy_group.command("new")
@click.option(
    "--from-measurements",
    "measurement_files",
    multiple=True,
    type=_file,
    help="A measurements JSON (mrtd, rtmr0..rtmr3 as hex); one record each.",
)
@click.option(
    "--from-quote",
    "quote_files",
    multiple=True,
    type=_file,
    help="Pin MRTD and RTMR0..3 of this quote; one record each.",
)
@click.option(
    "--id",
    "ids",
    multiple=True,
    help="Measurement id of each record, in order (default: the file's stem).",
)
@click.option(
    "--allow-status",
    multiple=True,
    metavar="STATUS",
    help="Also accept this TCB status (UpToDate always is).",
)
@click.option(
    "--any-measurements",
    is_flag=True,
    help="Accept any measurements (no allow-list): for development only.",
)
@click.option("--out", type=_file, help="Write the policy here (default: stdout).")
def policy_new(
    measurement_files: tuple[Path, ...],
    quote_files: tuple[Path, ...],
    ids: tuple[str, ...],
    allow_status: tuple[str, ...],
    any_measurements: bool,
    out: Path | None,
) -> None:
    """Write a policy that accepts the given measurements, strict everywhere else.

    Examples:

    \b
      mosaik attest policy new --from-measurements image/measurements.json --out policy.json
      mosaik attest policy new --from-quote quote.bin --id prod-2025-07 --out policy.json
      mosaik attest policy new --any-measurements --allow-status SWHardeningNeeded
    """
    count = len(measurement_files) + len(quote_files)
    if not count and not any_measurements:
        raise click.UsageError("give --from-measurements/--from-quote, or --any-measurements")
    if count and any_measurements:
        raise click.UsageError("--any-measurements excludes --from-measurements/--from-quote")
    if len(ids) > count:
        raise click.BadParameter(f"{len(ids)} ids for {count} records", param_hint="--id")
    sources = [(p.stem, _read_register_file(p)) for p in measurement_files]
    sources += [(p.stem, _quote_registers(p)) for p in quote_files]
    try:
        records = tuple(
            MeasurementRecord.of(ids[i] if i < len(ids) else stem, **registers)
            for i, (stem, registers) in enumerate(sources)
        )
        policy = Policy(
            allowed_tcb_statuses=frozenset({"UpToDate", *allow_status}),
            measurements=records or None,
        )
    except PolicyError as exc:
        raise click.BadParameter(str(exc)) from None
    text = policy.to_json()
    if out is None:
        click.echo(text, nl=False)
    else:
        _write(out, text.encode())
        click.echo(f"wrote policy with {len(records)} measurement record(s) to {out}", err=True)


def _quote_registers(path: Path) -> dict[str, bytes]:
    report = _read_quote(path).td_report
    return {"mrtd": report.mr_td, **{f"rtmr{i}": r for i, r in enumerate(report.rtmrs)}}


@policy_group.command("check")
@click.argument("policy_file", metavar="POLICY", type=_file)
@click.option(
    "--quote",
    "quote_file",
    type=_file,
    help="Also apply the TD rules (attributes, measurements) to this quote.",
)
@click.option(
    "--at", "at", type=TIME, default="now", show_default=True, help="Time for the quote-age rule."
)
@click.option("--quote-time", type=TIME, help="When the quote was produced.")
def policy_check(
    policy_file: Path, quote_file: Path | None, at: int, quote_time: int | None
) -> None:
    """Validate a POLICY file and summarise it; optionally test a quote's TD fields.

    --quote checks no signature and no TCB status: use `mosaik attest verify` for that.

    Examples:

    \b
      mosaik attest policy check policy.json
      mosaik attest policy check policy.json --quote quote.bin
    """
    try:
        policy = Policy.from_file(policy_file)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    records = policy.measurements
    click.echo(f"{policy_file}: valid policy")
    click.echo(f"  TCB statuses     {', '.join(sorted(policy.allowed_tcb_statuses))}")
    if records is None:
        click.echo("  measurements     ANY (no allow-list)")
    else:
        for record in records:
            registers = ", ".join(name for name, _ in record.expected)
            click.echo(f"  measurement      {record.measurement_id}: {registers}")
    if quote_file is None:
        return
    quote = _read_quote(quote_file)
    try:
        matched = policy.check_td(quote, now=at, quote_time=quote_time)
    except VerificationFailed as exc:
        raise click.ClickException(f"quote fails rule {exc.rule}: {exc.detail}") from None
    click.echo(
        f"quote passes the TD rules (measurement id: {matched or 'any'}); "
        "its signature and TCB status were not checked"
    )


__all__ = ["attest"]
