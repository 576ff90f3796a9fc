"""Parameter types, options and input helpers shared by the ``mosaik ticket`` commands.

Options are defined once here (the pip-tools way) so that mint, inspect and verify spell and
check them alike. Helpers turn unusable input into ``click.BadParameter``/``UsageError`` (exit 2)
and failures of the machine into ``click.ClickException`` (exit 1).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.collateral import Collateral
from attestation.errors import (
    AttestationError,
    CollateralError,
    InvalidArgument,
    PolicyError,
    ProviderUnavailable,
)
from attestation.policy import MeasurementRecord
from attestation.providers import detect_provider
from attestation.simulated import SimulatedPlatform
from node.errors import ConfigError
from node.primitives import PeerId, Ticket
from node.tickets.errors import TicketRejected
from node.tickets.jwt_ticket import ALGORITHMS
from node.tickets.tdx_ticket import QuoteProvider
from node.tickets.ticket_file import MAX_TICKET_FILE_SIZE, dump_ticket, load_ticket

I64_MAX = 2**63 - 1
# The simulated platform's state directory marks a complete platform with this file.
_SIMULATED_MARKER = "SIMULATED"


F = TypeVar("F", bound=Callable[..., Any])


def default_state_dir() -> Path:
    """The simulated platform ``mosaik attest quote --simulate`` uses too."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "mosaik" / "simulated-tdx"


# -- parameter types -----------------------------------------------------------------------------


class PeerIdParam(click.ParamType[PeerId]):
    """A peer id: 64 hex characters (``mosaik node id`` prints it)."""

    name = "PEER_ID"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> PeerId:
        if isinstance(value, PeerId):
            return value
        try:
            return PeerId.from_hex(str(value).strip())
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


_DURATION_PART = re.compile(r"(\d+)([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class DurationParam(click.ParamType[int]):
    """Whole seconds, or a sum of ``<n><unit>`` parts with units s, m, h, d, w (``1h30m``)."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration like 3600, 90s, 15m, 1h30m or 7d", param, ctx)
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
        if not 0 < seconds <= I64_MAX:
            self.fail(f"{value!r}: must be positive and fit in 64 bits", param, ctx)
        return seconds


class ClaimParam(click.ParamType[tuple[str, Any]]):
    """``NAME=VALUE``: VALUE is a string, or JSON when ``as_json``."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.name = "NAME=JSON" if as_json else "NAME=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        name, sep, text = str(value).partition("=")
        if not sep or not name:
            self.fail(f"{value!r} is not {self.name}", param, ctx)
        if not self.as_json:
            return name, text
        try:
            return name, json.loads(text)
        except ValueError as exc:
            self.fail(f"claim {name!r}: {text!r} is not JSON ({exc})", param, ctx)


PEER_ID = PeerIdParam()
DURATION = DurationParam()
FILE_PATH = click.Path(dir_okay=False, path_type=Path)
DIR_PATH = click.Path(file_okay=False, path_type=Path)
TICKET_INPUT = click.File("rb", lazy=False)

# -- options shared by several commands (defined once) -------------------------------------------


def peer_option(*, required: bool, help: str) -> Callable[[F], F]:
    return click.option("--peer", "peer_id", required=required, type=PEER_ID, help=help)


network_option = click.option(
    "--network", help="Network name (or its 64-hex id), as given to `mosaik node run`."
)
start_ms_option = click.option(
    "--start-ms",
    metavar="MS",
    type=click.IntRange(0, I64_MAX),
    help="Start time (ms) of the peer's entry: a TDX ticket serves one run of a node.",
)


def alg_option(*, required: bool) -> Callable[[F], F]:
    return click.option(
        "--alg", required=required, type=click.Choice(ALGORITHMS), help="JWT algorithm."
    )


def claim_options(verb: str) -> Callable[[F], F]:
    def decorate(command: F) -> F:
        command = click.option(
            "--claim-json",
            "json_claims",
            multiple=True,
            type=ClaimParam(as_json=True),
            help=f"{verb} a custom claim with a JSON value (repeatable).",
        )(command)
        return click.option(
            "--claim",
            "claims",
            multiple=True,
            type=ClaimParam(as_json=False),
            help=f"{verb} a custom claim with a string value (repeatable).",
        )(command)

    return decorate


def out_option(command: F) -> F:
    return click.option(
        "--out", type=FILE_PATH, help="Write the ticket file here (default: stdout)."
    )(command)


# -- helpers -------------------------------------------------------------------------------------


def key_material(
    alg: str, key_file: Path | None, secret_env: str | None, key_opt: str, env_opt: str
) -> bytes:
    """A PEM key (ES*, EdDSA) or an HMAC secret (HS*) from a file or an environment variable.

    A secret file's final newline is not part of the secret (editors add one).
    """
    if (key_file is None) == (secret_env is None):
        raise click.UsageError(f"give exactly one of {key_opt} FILE or {env_opt} VAR")
    hmac = alg.startswith("HS")
    if secret_env is not None:
        if not hmac:
            raise click.BadParameter(
                f"{alg} takes a PEM key file ({key_opt}); environment secrets are for HS*",
                param_hint=env_opt,
            )
        secret = os.environ.get(secret_env)
        if not secret:
            raise click.BadParameter(
                f"environment variable {secret_env} is unset or empty", param_hint=env_opt
            )
        return secret.encode()
    assert key_file is not None
    try:
        data = key_file.read_bytes()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {key_file}: {exc.strerror}", param_hint=key_opt
        ) from None
    if hmac:
        data = data.removesuffix(b"\n").removesuffix(b"\r")
    return data


def read_ticket(stream: IO[bytes]) -> Ticket:
    """The ticket in a ticket file; ``TicketRejected("format", ...)`` names the file."""
    name = getattr(stream, "name", "-")
    try:
        return load_ticket(stream.read(MAX_TICKET_FILE_SIZE + 1))
    except TicketRejected as exc:
        raise TicketRejected(exc.check, f"{name}: {exc.detail}") from None


def emit(ticket: Ticket, out: Path | None, summary: str) -> None:
    """Print the ticket file, or write it to ``out`` and say so on stderr."""
    text = dump_ticket(ticket)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="ascii")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {summary} to {out}", err=True)


def read_json(path: Path, option: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from None
    except ValueError as exc:
        raise click.BadParameter(f"{path} is not JSON: {exc}", param_hint=option) from None


def load_collateral(path: Path) -> Collateral:
    try:
        return Collateral.from_file(path)
    except CollateralError as exc:
        raise click.BadParameter(str(exc), param_hint="--collateral") from None


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(seconds: int) -> str:
    return f"{iso(seconds)} ({seconds})"


def simulated_platform(state_dir: Path | None, measurements: Path | None) -> SimulatedPlatform:
    """The SIMULATED platform in ``state_dir``, quoting ``measurements`` (a JSON file) if given."""
    registers: dict[str, bytes] = {}
    if measurements is not None:
        document = read_json(measurements, "--measurements")
        try:
            registers = MeasurementRecord.registers_from_document(document)
        except PolicyError as exc:
            raise click.BadParameter(str(exc), param_hint="--measurements") from None
    try:
        return SimulatedPlatform.open(state_dir or default_state_dir(), measurements=registers)
    except InvalidArgument as exc:
        raise click.BadParameter(str(exc), param_hint="--measurements") from None
    except AttestationError as exc:
        raise click.ClickException(str(exc)) from None


def configfs_tsm(tsm_root: Path) -> QuoteProvider:
    """The configfs-tsm provider; without configfs-tsm, exit 1 suggesting --simulate."""
    try:
        return detect_provider(None, tsm_root=tsm_root)
    except ProviderUnavailable as exc:
        raise click.ClickException(f"{exc} (add --simulate)") from None


def trusted_root(root_ca: Path | None, simulated_root: Path | None) -> bytes | None:
    """The root CA (DER) to trust instead of Intel's, if any."""
    if root_ca is not None and simulated_root is not None:
        raise click.UsageError("give at most one of --root-ca and --simulated-root")
    if simulated_root is not None:
        if not (simulated_root / _SIMULATED_MARKER).is_file():
            raise click.BadParameter(
                f"{simulated_root} holds no simulated platform (mint with --simulate first)",
                param_hint="--simulated-root",
            )
        try:
            return SimulatedPlatform.open(simulated_root).root_ca_der
        except AttestationError as exc:
            raise click.BadParameter(str(exc), param_hint="--simulated-root") from None
    if root_ca is None:
        return None
    try:
        data = root_ca.read_bytes()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {root_ca}: {exc.strerror}", param_hint="--root-ca"
        ) from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        return x509.load_der_x509_certificate(data).public_bytes(Encoding.DER)
    except Exception as exc:  # cryptography's parse errors are not all ValueError
        raise click.BadParameter(
            f"{root_ca} is not a certificate: {exc}", param_hint="--root-ca"
        ) from None


__all__ = [
    "DIR_PATH",
    "DURATION",
    "FILE_PATH",
    "I64_MAX",
    "PEER_ID",
    "TICKET_INPUT",
    "ClaimParam",
    "DurationParam",
    "PeerIdParam",
    "alg_option",
    "claim_options",
    "configfs_tsm",
    "default_state_dir",
    "emit",
    "iso",
    "key_material",
    "load_collateral",
    "network_option",
    "out_option",
    "peer_option",
    "read_json",
    "read_ticket",
    "simulated_platform",
    "start_ms_option",
    "trusted_root",
    "when",
]
