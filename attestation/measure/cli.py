"""``mosaik measure``: predict a TD's registers offline, or replay an event log.

The command only parses and validates flags and prints; the work is ``measure()`` and
``replay()``. Domain errors become ``click.ClickException``; flag misuse ``click.UsageError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click

from attestation.measure.errors import MeasureError
from attestation.measure.eventlog import EventLog, load_event_log
from attestation.measure.measurements import Measurements, Reference, load_reference, measure
from attestation.measure.qemu import format_memory
from attestation.measure.quote import QuoteRegisters, load_quote, quote_registers
from attestation.measure.replay import ReplayReport, replay

EXAMPLES: Final = """\b
Examples:
  # registers for a direct-boot guest on a QEMU 8.2 host (Ubuntu 24.04 TDX stack)
  mosaik measure --firmware /usr/share/ovmf/OVMF.fd --kernel vmlinuz --initrd initrd.img \\
      --cmdline "console=ttyS0" --memory 2G --cpus 2 --qemu-version 8.2.2
  # RTMR0 too, with the ACPI digests from a VM config; JSON for a policy file
  mosaik measure --firmware OVMF.fd --kernel vmlinuz --initrd initrd.img \\
      --vm-config vm.json --json > measurements.json
  # MRTD only, for a QEMU >= 9 host
  mosaik measure --firmware OVMF.fd --ordering single-pass
  # replay a guest's event log, check it against its quote and the expected events
  mosaik measure --event-log ccel.bin --expect-quote quote.bin --expect measurements.json
"""

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_NAMES: Final = {
    "mrtd": "MRTD",
    "rtmr0": "RTMR0",
    "rtmr1": "RTMR1",
    "rtmr2": "RTMR2",
    "rtmr3": "RTMR3",
}


@click.command("measure", epilog=EXAMPLES)
@click.option("--firmware", type=_FILE, help="TDVF/OVMF image (MRTD; RTMR0 with --vm-config).")
@click.option("--kernel", type=_FILE, help="Kernel (bzImage/EFI) for direct boot (RTMR1, RTMR2).")
@click.option("--initrd", type=_FILE, help="Initrd passed with -initrd (RTMR2).")
@click.option(
    "--uki", type=_FILE, help="Unified kernel image passed with -kernel, instead of --kernel."
)
@click.option("--cmdline", default=None, help="Kernel command line (QEMU -append).")
@click.option("--memory", default=None, help="Guest RAM, e.g. 2G (default 2G).")
@click.option(
    "--cpus", type=click.IntRange(min=1), default=None, help="vCPUs (recorded; RTMR0's ACPI)."
)
@click.option("--qemu-version", default=None, help="Host QEMU version, e.g. 8.2.2.")
@click.option(
    "--ordering",
    type=click.Choice(["two-pass", "single-pass"]),
    default=None,
    help="TDVF page ordering (default: from --qemu-version, else single-pass).",
)
@click.option(
    "--patch-setup-header/--no-patch-setup-header",
    default=None,
    help="Whether QEMU patches the kernel setup header (default: from --qemu-version, else yes).",
)
@click.option(
    "--vm-config", type=_FILE, help="VM config with the ACPI digests (mosaik or dstack JSON)."
)
@click.option("--id", "measurement_id", default=None, help="measurement_id of the policy record.")
@click.option("--event-log", type=_FILE, help="Replay this CCEL binary or JSON event list instead.")
@click.option("--expect-quote", type=_FILE, help="With --event-log: quote (binary, hex or JSON).")
@click.option(
    "--expect",
    "expect_file",
    type=_FILE,
    help="With --event-log: measurements JSON or known-good log to pinpoint diverging events.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def measure_command(
    ctx: click.Context,
    firmware: Path | None,
    kernel: Path | None,
    initrd: Path | None,
    uki: Path | None,
    cmdline: str | None,
    memory: str | None,
    cpus: int | None,
    qemu_version: str | None,
    ordering: str | None,
    patch_setup_header: bool | None,
    vm_config: Path | None,
    measurement_id: str | None,
    event_log: Path | None,
    expect_quote: Path | None,
    expect_file: Path | None,
    as_json: bool,
) -> None:
    """Predict a TDX guest's MRTD and RTMR0-2 offline, or replay its event log.

    Every host-side assumption (QEMU version, page ordering, setup-header patch, memory) is
    printed with where it came from; defaults are named as such.
    """

    def run(measurement_id: str | None = None) -> Measurements:
        return measure(
            firmware=firmware,
            kernel=kernel,
            initrd=initrd,
            uki=uki,
            cmdline=cmdline,
            memory=memory,
            cpus=cpus,
            qemu_version=qemu_version,
            ordering=ordering,
            patch_setup_header=patch_setup_header,
            vm_config=vm_config,
            measurement_id=measurement_id,
        )

    has_inputs = any(x is not None for x in (firmware, kernel, initrd, uki))
    if event_log is None:
        if expect_quote is not None or expect_file is not None:
            raise click.UsageError("--expect-quote and --expect need --event-log")
        if not has_inputs:
            raise click.UsageError("give --firmware, --kernel or --uki (or --event-log)")
    elif has_inputs and expect_file is not None:
        raise click.UsageError("give either --expect or measurement inputs, not both")
    try:
        if event_log is None:
            result = run(measurement_id)
            click.echo(_dump(result.to_json()) if as_json else _render_measurements(result))
            return
        reference = None
        if expect_file is not None:
            reference = load_reference(expect_file)
        elif has_inputs:
            computed = run()
            reference = Reference("computed from the given inputs", computed.events, computed.mrtd)
        log = load_event_log(event_log)
        quote = None
        if expect_quote is not None:
            quote = quote_registers(load_quote(expect_quote), str(expect_quote))
        report = replay(
            log.events,
            expected=None if quote is None else quote.as_expected(),
            reference=None if reference is None else reference.events,
        )
    except MeasureError as exc:
        raise click.ClickException(str(exc)) from None
    check = _ReplayCheck(log, report, quote, reference)
    click.echo(_dump(check.to_json()) if as_json else check.render())
    if not check.ok:
        ctx.exit(1)


def _dump(document: object) -> str:
    return json.dumps(document, indent=2)


def _render_measurements(result: Measurements) -> str:
    lines = [f"{name.upper():<6} {value.hex()}" for name, value in result.registers().items()]
    lines.append(f"measurement id  {result.measurement_id}")
    a = result.assumptions
    lines += ["", "assumptions"]
    if a.page_ordering is not None:
        lines.append(
            f"  page ordering   {a.page_ordering.value} ({_origin(a.page_ordering_source)})"
        )
    if a.setup_header_patched is not None:
        patched = "patched by QEMU" if a.setup_header_patched else "not patched"
        lines.append(f"  setup header    {patched} ({_origin(a.setup_header_source)})")
    lines.append(f"  QEMU version    {a.qemu_version or 'not given'}")
    lines.append(f"  memory          {format_memory(a.memory)} ({_origin(a.memory_source)})")
    if a.cpus is not None:
        lines.append(f"  cpus            {a.cpus} ({_origin(a.cpus_source)})")
    if a.ovmf_variant is not None:
        lines.append(f"  OVMF variant    {a.ovmf_variant}")
    if a.initrd_address is not None:
        lines.append(f"  initrd address  {a.initrd_address:#x}")
    lines += ["", "inputs"]
    for record in result.inputs:
        where = record.path if record.path is not None else repr(record.value)
        lines.append(f"  {record.role:<9} sha256 {record.sha256}  {where}")
    if a.notes:
        lines += ["", "notes"] + [f"  - {note}" for note in a.notes]
    return "\n".join(lines)


def _origin(source: str | None) -> str:
    return {"qemu-version": "from QEMU version", "vm-config": "from VM config"}.get(
        source or "", source or ""
    )


@dataclass(frozen=True, slots=True)
class _ReplayCheck:
    """The outcome of ``--event-log``: replay report plus the MRTD comparison, for output."""

    log: EventLog
    report: ReplayReport
    quote: QuoteRegisters | None
    reference: Reference | None

    @property
    def mrtd_matches(self) -> bool | None:
        if self.quote is None or self.reference is None or self.reference.mrtd is None:
            return None
        return self.quote.mrtd == self.reference.mrtd

    @property
    def ok(self) -> bool:
        return self.report.ok and self.mrtd_matches is not False

    def render(self) -> str:
        log, reference = self.log, self.reference
        lines = [f"event log  {log.source} ({log.format}, {len(log.events)} events)"]
        if reference is not None:
            lines.append(f"reference  {reference.source} ({len(reference.events)} events)")
        if self.mrtd_matches is not None:
            verdict = "matches" if self.mrtd_matches else "DIFFERS from"
            lines.append(f"MRTD   quote {verdict} the reference")
        for result in self.report.registers:
            status = ""
            if result.matches is True:
                status = "  matches quote"
            elif result.matches is False and result.expected is not None:
                status = f"  DIFFERS from quote {result.expected.hex()}"
            lines.append(f"RTMR{result.register:<2} {result.value.hex()}{status}")
        if self.report.divergences:
            lines += ["", "divergences"]
            lines += [f"  {d.describe()}" for d in self.report.divergences]
        elif not self.report.ok:
            lines += ["", "no event can be blamed without reference events: pass --expect"]
        lines += ["", f"result  {'OK' if self.ok else 'MISMATCH'}"]
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        document = self.report.to_json()
        document["event_log"] = {
            "path": self.log.source,
            "format": self.log.format,
            "events": len(self.log.events),
        }
        document["reference"] = None if self.reference is None else self.reference.source
        if self.quote is not None:
            expected = None if self.reference is None else self.reference.mrtd
            document["mrtd"] = {
                "quote": self.quote.mrtd.hex(),
                "expected": None if expected is None else expected.hex(),
                "matches": self.mrtd_matches,
            }
        document["ok"] = self.ok
        return document


__all__ = ["measure_command"]
