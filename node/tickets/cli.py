"""``mosaik ticket``: mint, inspect and verify tickets (JWT and TDX).

Commands only parse, validate and call library code: usage errors are ``click.UsageError``/
``click.BadParameter`` (exit 2), rejected or unusable tickets ``click.ClickException`` (exit 1,
one line). Tickets travel as ticket files (``node.tickets.ticket_file``). HMAC secrets come
from a file or an environment variable, never from the command line (argv is visible to every
user of the machine). Anything simulated is labelled SIMULATED.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from attestation.cli import TIME
from attestation.collateral import Collateral
from attestation.errors import PolicyError
from attestation.policy import Policy
from attestation.providers import TSM_REPORT_ROOT
from attestation.verify import INTEL_ROOT_CA_SHA256
from node.primitives import Digest, PeerId, Ticket
from node.tickets.cli_options import (
    DIR_PATH,
    DURATION,
    FILE_PATH,
    TICKET_INPUT,
    alg_option,
    claim_options,
    configfs_tsm,
    emit,
    iso,
    key_material,
    load_collateral,
    network_option,
    out_option,
    peer_option,
    read_ticket,
    simulated_platform,
    start_ms_option,
    trusted_root,
    when,
)
from node.tickets.describe import describe_ticket
from node.tickets.errors import MintError, TicketConfigError, TicketRejected, TicketsRejected
from node.tickets.jwt_ticket import JwtTicketBuilder, JwtTicketValidator
from node.tickets.tdx_ticket import QuoteProvider, TdxTicketValidator, mint_tdx_ticket
from node.tickets.ticket_file import class_name
from node.tickets.validation import At, Expiry, TicketValidator, validate_all

_SIMULATED_LABEL = "SIMULATED TDX ticket: quoted by the simulated platform, not by TDX hardware"


# -- the group -----------------------------------------------------------------------------------


@click.group("ticket")
def ticket_group() -> None:
    """Mint, inspect and verify tickets: the credentials peers carry in their entries.

    A ticket file is one line of JSON: {"format": "mosaik-ticket/v1", "class": "jwt"|"tdx",
    "class_id": HEX, "data": BASE64}.
    """


@ticket_group.group("mint")
def mint_group() -> None:
    """Mint a ticket for a peer (JWT signed by an issuer key, or a TDX quote)."""


@mint_group.command("jwt")
@peer_option(required=True, help="The peer the ticket is for (its id becomes `sub`).")
@alg_option(required=True)
@click.option(
    "--key", "key_file", type=FILE_PATH, help="Signing key: PEM (ES*, EdDSA) or secret file."
)
@click.option("--secret-env", metavar="VAR", help="Environment variable holding the HS* secret.")
@click.option("--issuer", help="The `iss` claim.")
@click.option("--audience", multiple=True, help="An `aud` value (repeatable).")
@click.option(
    "--expires-in", required=True, type=DURATION, help="Lifetime: `exp` = `iat` + DURATION."
)
@claim_options("Add")
@out_option
def mint_jwt(
    peer_id: PeerId,
    alg: str,
    key_file: Path | None,
    secret_env: str | None,
    issuer: str | None,
    audience: tuple[str, ...],
    expires_in: int,
    claims: tuple[tuple[str, Any], ...],
    json_claims: tuple[tuple[str, Any], ...],
    out: Path | None,
) -> None:
    """Mint a JWT ticket for PEER, signed with --key FILE or the secret in --secret-env VAR.

    ES256/384/512 and EdDSA sign with a PEM private key file; HS256/384/512 with a secret
    read from a file (its final newline ignored) or an environment variable, never from the
    command line.

    Examples:

    \b
      mosaik ticket mint jwt --peer $(mosaik node id node.key) --alg ES256 \\
          --key issuer.pem --issuer ops --audience orders --expires-in 1h --out node.ticket
      MOSAIK_JWT_SECRET=... mosaik ticket mint jwt --peer PEER_ID --alg HS256 \\
          --secret-env MOSAIK_JWT_SECRET --expires-in 15m --claim role=writer
    """
    material = key_material(alg, key_file, secret_env, "--key", "--secret-env")
    key_opt = "--key" if key_file is not None else "--secret-env"
    try:
        builder = JwtTicketBuilder(material, alg)
    except TicketConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=key_opt) from None
    if issuer is not None:
        builder = builder.issuer(issuer)
    if audience:
        builder = builder.audience(*audience)
    builder = builder.expires_in(expires_in)
    try:
        for name, value in (*claims, *json_claims):
            builder = builder.claim(name, value)
    except TicketConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--claim") from None
    try:
        ticket = builder.mint(peer_id)
    except MintError as exc:
        raise click.ClickException(str(exc)) from None
    emit(ticket, out, f"a {alg} JWT ticket for peer {peer_id.short()}")


@mint_group.command("tdx")
@peer_option(required=True, help="The peer the quote is bound to.")
@network_option
@start_ms_option
@click.option(
    "--expires-in", required=True, type=DURATION, help="Lifetime after the quote is made."
)
@click.option(
    "--simulate", is_flag=True, help="Quote with the SIMULATED platform (no TDX hardware)."
)
@click.option(
    "--state-dir",
    type=DIR_PATH,
    help="With --simulate: the platform's keys (default: $XDG_STATE_HOME/mosaik/simulated-tdx).",
)
@click.option(
    "--measurements",
    type=FILE_PATH,
    help="With --simulate: JSON of mrtd/rtmr0..rtmr3 (hex) the quote reports.",
)
@click.option(
    "--collateral",
    "collateral_file",
    type=FILE_PATH,
    help="Attach this collateral JSON (with --simulate: default the platform's own).",
)
@click.option(
    "--tsm-root",
    type=DIR_PATH,
    default=TSM_REPORT_ROOT,
    show_default=True,
    help="configfs-tsm report directory.",
)
@out_option
def mint_tdx(
    peer_id: PeerId,
    network: str | None,
    start_ms: int | None,
    expires_in: int,
    simulate: bool,
    state_dir: Path | None,
    measurements: Path | None,
    collateral_file: Path | None,
    tsm_root: Path,
    out: Path | None,
) -> None:
    """Mint a TDX ticket: a quote whose report data commits to PEER, NETWORK and START_MS.

    The quote comes from configfs-tsm (a TDX guest, Linux >= 6.7); without it the command
    refuses unless --simulate is given. Simulated tickets verify only against the simulated
    platform's root (`mosaik ticket verify --simulated-root DIR`) and carry its collateral
    unless --collateral is given.

    Examples:

    \b
      mosaik ticket mint tdx --peer PEER_ID --network prod --start-ms 1750000000000 \\
          --expires-in 6h --collateral collateral.json --out node.ticket
      mosaik ticket mint tdx --simulate --state-dir sim --peer PEER_ID --network demo \\
          --start-ms 1750000000000 --expires-in 1h --out node.ticket
    """
    if network is None or start_ms is None:
        raise click.UsageError("--network and --start-ms are required: the quote binds them")
    if not simulate:
        options = (("--state-dir", state_dir), ("--measurements", measurements))
        given = [name for name, value in options if value is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} only make sense with --simulate")
    collateral: Collateral | str | None = None
    if collateral_file is not None:
        collateral = load_collateral(collateral_file)
    provider: QuoteProvider
    if simulate:
        platform = simulated_platform(state_dir, measurements)
        provider = platform
    else:
        provider = configfs_tsm(tsm_root)
    quoted_at = int(time.time())
    expiration = quoted_at + expires_in
    if simulate and collateral is None:
        collateral = platform.collateral_json(quoted_at)
    try:
        ticket = mint_tdx_ticket(
            provider,
            peer_id,
            Digest.from_name(network),
            start_ms,
            quoted_at,
            expiration,
            collateral,
        )
    except TicketConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    except MintError as exc:
        raise click.ClickException(str(exc)) from None
    if simulate:
        click.echo(_SIMULATED_LABEL, err=True)
    label = "SIMULATED TDX" if simulate else "TDX"
    emit(ticket, out, f"a {label} ticket for peer {peer_id.short()}, expires {iso(expiration)}")


@ticket_group.command("inspect")
@click.argument("ticket_file", metavar="FILE", type=TICKET_INPUT)
@peer_option(required=False, help="With --network and --start-ms: check a TDX binding.")
@network_option
@start_ms_option
@click.option("--json", "as_json", is_flag=True, help="Print the fields as JSON.")
def inspect_cmd(
    ticket_file: IO[bytes],
    peer_id: PeerId | None,
    network: str | None,
    start_ms: int | None,
    as_json: bool,
) -> None:
    """Show what the ticket in FILE ('-' for stdin) says, without verifying it.

    JWT tickets: header and claims. TDX tickets: when the quote was made and expires, its
    measurements (MRTD, RTMR0-3), report data, whether its certificate chain ends at Intel's
    root or is SIMULATED, and, given --peer, --network and --start-ms, whether the report
    data commits to them. `mosaik ticket verify` decides whether a ticket is valid.

    Examples:

    \b
      mosaik ticket inspect node.ticket
      mosaik ticket inspect node.ticket --peer PEER_ID --network demo --start-ms 1750000000000
      mosaik ticket mint jwt ... | mosaik ticket inspect - --json
    """
    try:
        ticket = read_ticket(ticket_file)
        description = describe_ticket(
            ticket,
            peer_id=peer_id,
            network_id=None if network is None else Digest.from_name(network),
            start_ms=start_ms,
        )
    except TicketRejected as exc:
        raise click.ClickException(
            f"cannot read the ticket: check {exc.check}: {exc.detail}"
        ) from None
    if as_json:
        click.echo(json.dumps(description, indent=2, sort_keys=True))
        return
    for label, value in _description_rows(description):
        click.echo(f"{label:<16}{value}" if label else value)


_TIME_CLAIMS = frozenset({"iat", "nbf", "exp"})
_YEAR_5000 = 95_617_584_000  # shown as dates below this; datetime stops at year 9999


def _description_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("class", f"{d['class']} ({d['class_id'][:16]}..., {d['size']} bytes)")]
    if d["class"] == "jwt":
        rows.append(("signature", "NOT VERIFIED (use `mosaik ticket verify`)"))
        rows.append(("header", json.dumps(d["header"], sort_keys=True)))
        for name, value in d["claims"].items():
            is_date = name in _TIME_CLAIMS and type(value) is int and 0 <= value < _YEAR_5000
            rows.append((f"claim {name}", when(value) if is_date else json.dumps(value)))
    elif d["class"] == "tdx":
        simulated = d["simulated"]
        if simulated:
            rows.insert(
                0, ("", "SIMULATED: the quote's certificate chain does not end at Intel's root")
            )
        root = d["root_ca_sha256"]
        rows.append((
            "platform",
            "unknown (no certificate chain in the quote)" if root is None
            else f"{'SIMULATED' if simulated else 'Intel'} root (sha256 {root[:16]}...)",
        ))  # fmt: skip
        quote = d["quote"]
        rows += [
            ("quoted at", when(d["quoted_at"])),
            ("expires", when(d["expiration"])),
            ("quote", f"v{quote['version']}, {quote['td_report']}, {quote['size']} bytes"),
            ("MRTD", d["measurements"]["mrtd"]),
            *((f"RTMR{i}", d["measurements"][f"rtmr{i}"]) for i in range(4)),
            ("report data", d["report_data"]),
            ("binding", _binding_text(d["binding"])),
            ("TD attributes", f"{d['td_attributes']} (debug {'ON' if d['debug'] else 'off'})"),
            ("collateral", _collateral_text(d["collateral"])),
        ]
    return rows


def _binding_text(binding: str) -> str:
    if binding == "not checked":
        return "not checked (give --peer, --network and --start-ms)"
    if binding == "matches":
        return "matches the given peer, network and start time"
    return "DOES NOT MATCH the given peer, network and start time"


def _collateral_text(collateral: dict[str, Any] | None) -> str:
    if collateral is None:
        return "not carried (the verifier needs its own)"
    if "error" in collateral:
        return f"carried but unusable: {collateral['error']}"
    window = f"{iso(collateral['not_before'])} to {iso(collateral['not_after'])}"
    return f"carried, valid {window}, FMSPC {collateral['fmspc']}"


@ticket_group.command("verify")
@click.argument("ticket_file", metavar="FILE", type=TICKET_INPUT)
@peer_option(required=True, help="The peer presenting the ticket.")
@network_option
@start_ms_option
@click.option("--jwt-key", type=FILE_PATH, help="JWT: PEM public key (ES*, EdDSA) or secret file.")
@click.option("--jwt-secret-env", metavar="VAR", help="JWT: environment variable with the secret.")
@alg_option(required=False)
@click.option("--issuer", "issuers", multiple=True, help="JWT: an accepted `iss` (repeatable).")
@click.option("--audience", multiple=True, help="JWT: an accepted `aud` (repeatable).")
@claim_options("JWT: require")
@click.option("--policy", "policy_file", type=FILE_PATH, help="TDX: verification policy JSON.")
@click.option(
    "--collateral",
    "collateral_file",
    type=FILE_PATH,
    help="TDX: verify with this collateral JSON instead of the ticket's.",
)
@click.option(
    "--root-ca", type=FILE_PATH, help="TDX: trust this root CA (DER or PEM), not Intel's."
)
@click.option(
    "--simulated-root",
    type=DIR_PATH,
    help="TDX: trust the root of the SIMULATED platform in this state directory.",
)
@click.option(
    "--at",
    "at",
    type=TIME,
    default="now",
    show_default=True,
    help="Verification time (Unix seconds, ISO 8601 or 'now').",
)
def verify_cmd(
    ticket_file: IO[bytes],
    peer_id: PeerId,
    network: str | None,
    start_ms: int | None,
    jwt_key: Path | None,
    jwt_secret_env: str | None,
    alg: str | None,
    issuers: tuple[str, ...],
    audience: tuple[str, ...],
    claims: tuple[tuple[str, Any], ...],
    json_claims: tuple[tuple[str, Any], ...],
    policy_file: Path | None,
    collateral_file: Path | None,
    root_ca: Path | None,
    simulated_root: Path | None,
    at: int,
) -> None:
    """Verify the ticket in FILE ('-' for stdin) as presented by PEER; print until when it holds.

    JWT tickets: --alg with --jwt-key or --jwt-secret-env, plus the claims to require. TDX
    tickets: --policy, --network and --start-ms of the peer's entry, and a root: Intel's by
    default, --root-ca, or --simulated-root for SIMULATED tickets. Exits 1 naming the check
    that failed (format, signature, sub, exp, binding, quote, policy, ...).

    Examples:

    \b
      mosaik ticket verify node.ticket --peer PEER_ID --alg ES256 --jwt-key issuer.pub.pem \\
          --issuer ops --audience orders
      mosaik ticket verify node.ticket --peer PEER_ID --network demo --start-ms 1750000000000 \\
          --policy policy.json --simulated-root sim
    """
    jwt_options: dict[str, object] = {"--alg": alg, "--issuer": issuers, "--audience": audience}
    jwt_options |= {"--claim": claims, "--claim-json": json_claims}
    tdx_options: dict[str, object] = {"--collateral": collateral_file, "--root-ca": root_ca}
    tdx_options |= {"--simulated-root": simulated_root}
    validator: TicketValidator
    simulated = False
    if (jwt_key is not None or jwt_secret_env is not None) == (policy_file is not None):
        raise click.UsageError(
            "give either JWT keys (--jwt-key or --jwt-secret-env) or a TDX --policy"
        )
    if policy_file is None:
        _refuse_options(tdx_options, "TDX tickets (--policy)")
        if alg is None:
            raise click.UsageError("--alg is required with --jwt-key/--jwt-secret-env")
        material = key_material(alg, jwt_key, jwt_secret_env, "--jwt-key", "--jwt-secret-env")
        try:
            validator = JwtTicketValidator(
                {alg: material},
                issuers=issuers,
                audience=audience,
                claims=dict((*claims, *json_claims)),
            )
        except TicketConfigError as exc:
            hint = "--jwt-key" if jwt_key is not None else "--jwt-secret-env"
            raise click.BadParameter(str(exc), param_hint=hint) from None
    else:
        _refuse_options(jwt_options, "JWT tickets (--jwt-key/--jwt-secret-env)")
        if network is None or start_ms is None:
            raise click.UsageError("TDX tickets need --network and --start-ms of the peer's entry")
        root_der = trusted_root(root_ca, simulated_root)
        simulated = root_der is not None and hashlib.sha256(root_der).hexdigest() != (
            INTEL_ROOT_CA_SHA256
        )
        validator = _tdx_validator(policy_file, collateral_file, root_der)
    try:
        ticket = read_ticket(ticket_file)
    except TicketRejected as exc:
        raise click.ClickException(f"REJECTED: check {exc.check}: {exc.detail}") from None
    if ticket.class_id != validator.class_id:
        wanted = class_name(validator.class_id)
        raise click.ClickException(
            f"REJECTED: check class: {ticket_file.name} holds a {class_name(ticket.class_id)} "
            f"ticket, the options given verify {wanted} tickets"
        )
    subject = _Presenter(
        peer_id,
        Digest.from_name(network) if network is not None else Digest(bytes(32)),
        start_ms or 0,
        (ticket,),
    )
    try:
        expiry = validate_all([validator], subject, at)
    except TicketsRejected as exc:
        reasons = "; ".join(f"check {r.check}: {r.detail}" for r in exc.rejections)
        raise click.ClickException(f"REJECTED: {reasons}") from None
    kind = class_name(ticket.class_id).upper()
    if simulated:
        kind = f"SIMULATED {kind}"
    click.echo(f"VALID {kind} ticket for peer {peer_id.short()}: {_expiry_text(expiry)}")


@dataclass(frozen=True, slots=True)
class _Presenter:
    """The peer entry a ticket is checked against (what `TicketSubject` asks for)."""

    peer_id: PeerId
    network_id: Digest
    start_ms: int
    tickets: tuple[Ticket, ...]


def _refuse_options(options: dict[str, object], applies_to: str) -> None:
    given = [name for name, value in options.items() if value not in (None, ())]
    if given:
        raise click.UsageError(f"{', '.join(given)} only apply to {applies_to}")


def _tdx_validator(
    policy_file: Path, collateral_file: Path | None, root_der: bytes | None
) -> TdxTicketValidator:
    try:
        policy = Policy.from_file(policy_file)
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--policy") from None
    collateral = load_collateral(collateral_file) if collateral_file is not None else None
    try:
        return TdxTicketValidator(policy, root_ca_der=root_der, collateral=collateral)
    except TicketConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--policy") from None


def _expiry_text(expiry: Expiry) -> str:
    if isinstance(expiry, At):
        return f"valid until {when(int(expiry.timestamp))}"
    return "valid with no expiry (until removed from the peer's entry)"


__all__ = ["ticket_group"]
