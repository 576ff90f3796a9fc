"""``mosaik ticket``: mint, inspect, verify (CliRunner; TDX through the SIMULATED platform)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from attestation.policy import MeasurementRecord, Policy
from attestation.simulated import SimulatedPlatform
from node.primitives import SecretKey, Ticket
from node.tickets import TDX_CLASS, TdxTicketData, decode_tdx_ticket, encode_tdx_ticket
from node.tickets.cli import ticket_group
from node.tickets.ticket_file import dump_ticket, load_ticket

PEER = SecretKey.from_seed(b"\x01" * 32).peer_id.hex()
OTHER_PEER = SecretKey.from_seed(b"\x02" * 32).peer_id.hex()
SECRET = "correct horse battery staple, 32+ bytes long"
START_MS = "1750000000000"
TDX_STATEMENT = ("--peer", PEER, "--network", "demo", "--start-ms", START_MS)


def run(*args: str | Path, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(ticket_group, [str(a) for a in args], env=env, input=stdin)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def rejected(result: Result, check: str) -> str:
    """The one-line rejection, after checking it exits 1 and names ``check``."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert "\n" not in message
    assert f"check {check}:" in message, message
    return message


def usage_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr


def pem_pair(key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey) -> tuple[bytes, bytes]:
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Issuer keys: ES256 and EdDSA PEM pairs, and an HS256 secret file (newline-terminated)."""
    root = tmp_path_factory.mktemp("keys")
    files = {}
    for alg, key in (
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", Ed25519PrivateKey.generate()),
    ):
        private, public = pem_pair(key)
        (root / f"{alg}.pem").write_bytes(private)
        (root / f"{alg}.pub.pem").write_bytes(public)
        files[alg] = root / f"{alg}.pem"
        files[f"{alg}.pub"] = root / f"{alg}.pub.pem"
    files["HS256"] = root / "hs256.secret"
    files["HS256"].write_text(SECRET + "\n")
    return files


def mint_jwt(tmp_path: Path, keys: dict[str, Path], *extra: str, alg: str = "ES256") -> Path:
    out = tmp_path / f"{alg}.ticket"
    ok(run("mint", "jwt", "--peer", PEER, "--alg", alg, "--key", keys[alg], "--issuer", "ops",
           "--audience", "orders", "--expires-in", "1h", "--out", out, *extra))  # fmt: skip
    return out


def verify_jwt(ticket: Path, keys: dict[str, Path], *extra: str, peer: str = PEER) -> Result:
    return run("verify", ticket, "--peer", peer, "--alg", "ES256", "--jwt-key", keys["ES256.pub"],
               *extra)  # fmt: skip


# -- JWT -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_jwt_round_trip_mint_inspect_verify(
    tmp_path: Path, keys: dict[str, Path], alg: str
) -> None:
    ticket = mint_jwt(tmp_path, keys, "--claim", "role=writer", "--claim-json", "level=3", alg=alg)
    assert load_ticket(ticket.read_text()).class_id.hex() in ticket.read_text()

    shown = ok(run("inspect", ticket)).stdout
    assert "jwt" in shown and "NOT VERIFIED" in shown and f'"alg": "{alg}"' in shown
    assert re.search(rf'^claim sub +"{PEER}"$', shown, re.MULTILINE)

    described = json.loads(ok(run("inspect", ticket, "--json")).stdout)
    claims = described["claims"]
    assert described["class"] == "jwt" and described["header"]["alg"] == alg
    assert claims["sub"] == PEER and claims["iss"] == "ops" and claims["aud"] == "orders"
    assert claims["role"] == "writer" and claims["level"] == 3
    assert claims["exp"] == claims["iat"] + 3600

    verified = ok(run("verify", ticket, "--peer", PEER, "--alg", alg,
                      "--jwt-key", keys[f"{alg}.pub"], "--issuer", "ops", "--audience", "orders",
                      "--claim", "role=writer", "--claim-json", "level=3"))  # fmt: skip
    assert verified.stdout.startswith("VALID JWT ticket")
    assert f"({claims['exp']})" in verified.stdout


def test_jwt_hs256_secret_from_env_verified_with_secret_file(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    env = {"ISSUER_SECRET": SECRET}
    minted = ok(run("mint", "jwt", "--peer", PEER, "--alg", "HS256", "--secret-env",
                    "ISSUER_SECRET", "--expires-in", "15m", env=env))  # fmt: skip
    ticket = tmp_path / "hs.ticket"
    ticket.write_text(minted.stdout)
    claims = json.loads(ok(run("inspect", "-", "--json", stdin=minted.stdout)).stdout)["claims"]
    assert claims["exp"] - claims["iat"] == 900

    # The secret file's final newline is not part of the secret.
    args = ("verify", ticket, "--peer", PEER, "--alg", "HS256")
    assert ok(run(*args, "--jwt-key", keys["HS256"])).stdout.startswith("VALID JWT")
    assert ok(run(*args, "--jwt-secret-env", "S", env={"S": SECRET})).stdout.startswith("VALID")
    rejected(run(*args, "--jwt-secret-env", "S", env={"S": SECRET + "!"}), "signature")


def test_jwt_rejections_name_the_check(tmp_path: Path, keys: dict[str, Path]) -> None:
    ticket = mint_jwt(tmp_path, keys, "--claim", "role=writer")
    assert f"for peer {PEER[:10]}:" in ok(verify_jwt(ticket, keys)).stdout
    rejected(verify_jwt(ticket, keys, peer=OTHER_PEER), "sub")
    rejected(verify_jwt(ticket, keys, "--issuer", "someone-else"), "iss")
    rejected(verify_jwt(ticket, keys, "--audience", "billing"), "aud")
    rejected(verify_jwt(ticket, keys, "--claim", "role=admin"), "claims")
    rejected(verify_jwt(ticket, keys, "--at", "2999-01-01T00:00:00Z"), "exp")
    other_key = tmp_path / "other.pub.pem"
    other_key.write_bytes(pem_pair(ec.generate_private_key(ec.SECP256R1()))[1])
    rejected(run("verify", ticket, "--peer", PEER, "--alg", "ES256", "--jwt-key", other_key),
             "signature")  # fmt: skip
    # Verifying with a key for another algorithm: the token's alg has no key.
    rejected(run("verify", ticket, "--peer", PEER, "--alg", "EdDSA",
                 "--jwt-key", keys["EdDSA.pub"]), "alg")  # fmt: skip


def rewrite(path: Path, change: Any) -> Path:
    """A copy of the ticket file at ``path`` whose JSON document went through ``change``."""
    document = json.loads(path.read_text())
    change(document)
    tampered = path.with_name("tampered-" + path.name)
    tampered.write_text(json.dumps(document))
    return tampered


def test_tampered_jwt_ticket_is_rejected_with_the_check_named(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    ticket = mint_jwt(tmp_path, keys)

    def promote(document: dict[str, Any]) -> None:
        header, payload, signature = base64.b64decode(document["data"]).split(b".")
        claims = json.loads(base64.urlsafe_b64decode(payload + b"=="))
        claims["exp"] += 86_400
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
        document["data"] = base64.b64encode(b".".join((header, forged, signature))).decode()

    message = rejected(verify_jwt(rewrite(ticket, promote), keys), "signature")
    assert message.startswith("Error: REJECTED")

    def relabel(document: dict[str, Any]) -> None:
        document["class"] = "tdx"

    def corrupt(document: dict[str, Any]) -> None:
        document["data"] = "not base64!"

    for change in (relabel, corrupt):
        rejected(verify_jwt(rewrite(ticket, change), keys), "format")
        assert run("inspect", rewrite(ticket, change)).exit_code == 1
    (tmp_path / "garbage").write_text("{not json")
    rejected(verify_jwt(tmp_path / "garbage", keys), "format")


def test_missing_or_misplaced_key_material_is_a_usage_error(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    mint = ("mint", "jwt", "--peer", PEER, "--expires-in", "1h")
    usage_error(run(*mint, "--alg", "ES256"), "give exactly one of --key FILE or --secret-env VAR")
    usage_error(run(*mint, "--alg", "HS256", "--key", keys["HS256"], "--secret-env", "S"),
                "exactly one")  # fmt: skip
    usage_error(run(*mint, "--alg", "HS256", "--secret-env", "UNSET_SECRET_VAR", env={}),
                "UNSET_SECRET_VAR is unset")  # fmt: skip
    usage_error(run(*mint, "--alg", "ES256", "--secret-env", "S", env={"S": SECRET}),
                "ES256 takes a PEM key file")  # fmt: skip
    usage_error(run(*mint, "--alg", "HS256", "--secret-env", "S", env={"S": "short"}),
                "at least 32 bytes")  # fmt: skip
    usage_error(run(*mint, "--alg", "ES256", "--key", keys["ES256.pub"]), "--key", "private key")
    usage_error(run(*mint, "--alg", "ES256", "--key", tmp_path / "absent.pem"), "cannot read")
    usage_error(run(*mint, "--key", keys["ES256"]), "--alg")
    usage_error(run("mint", "jwt", "--peer", "abc", "--alg", "ES256", "--key", keys["ES256"],
                    "--expires-in", "1h"), "peer id")  # fmt: skip
    usage_error(run(*mint[:-1], "soon", "--alg", "ES256", "--key", keys["ES256"]), "duration")
    usage_error(run(*mint, "--alg", "ES256", "--key", keys["ES256"], "--claim", "sub=x"), "sub")

    ticket = mint_jwt(tmp_path, keys)
    verify = ("verify", ticket, "--peer", PEER)
    usage_error(run(*verify), "--jwt-key", "--policy")
    usage_error(run(*verify, "--alg", "ES256"), "either JWT keys")
    usage_error(run(*verify, "--jwt-key", keys["ES256.pub"]), "--alg is required")
    usage_error(run(*verify, "--alg", "ES256", "--jwt-key", keys["ES256"]), "public key")
    usage_error(run(*verify, "--alg", "HS256", "--jwt-secret-env", "UNSET_SECRET_VAR", env={}),
                "UNSET_SECRET_VAR")  # fmt: skip
    usage_error(run(*verify, "--alg", "ES256", "--jwt-key", keys["ES256.pub"], "--root-ca",
                    keys["ES256"]), "--root-ca only apply to TDX")  # fmt: skip
    usage_error(run("verify", tmp_path / "absent", "--peer", PEER), "absent")


# -- TDX (SIMULATED platform) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A simulated platform's state, a policy accepting its MRTD, one ticket minted from it."""
    root = tmp_path_factory.mktemp("simulated")
    state = root / "state"
    platform = SimulatedPlatform.open(state)
    policy = Policy(measurements=(MeasurementRecord.of("image", mrtd=platform.td_defaults.mrtd),))
    (root / "policy.json").write_text(policy.to_json())
    ticket = root / "tdx.ticket"
    minted = ok(run("mint", "tdx", "--simulate", "--state-dir", state, *TDX_STATEMENT,
                    "--expires-in", "2h", "--out", ticket))  # fmt: skip
    assert minted.stderr.startswith("SIMULATED TDX ticket")
    assert "SIMULATED TDX ticket for peer" in minted.stderr
    yield {"state": state, "policy": root / "policy.json", "ticket": ticket, "root": root}


def verify_tdx(ticket: Path, sim: dict[str, Path], *extra: str | Path, **statement: str) -> Result:
    args = dict(zip(TDX_STATEMENT[::2], TDX_STATEMENT[1::2], strict=True))
    args.update({f"--{k.replace('_', '-')}": v for k, v in statement.items()})
    flat = [item for pair in args.items() for item in pair]
    return run("verify", ticket, *flat, "--policy", sim["policy"], *extra)


def test_tdx_simulated_round_trip_mint_inspect_verify(simulated: dict[str, Path]) -> None:
    ticket = simulated["ticket"]
    data = decode_tdx_ticket(load_ticket(ticket.read_text()).data)
    assert data.expiration - data.quoted_at == 7200 and data.collateral is not None

    shown = ok(run("inspect", ticket, *TDX_STATEMENT)).stdout
    assert shown.startswith("SIMULATED")
    mrtd = SimulatedPlatform.open(simulated["state"]).td_defaults.mrtd.hex()
    for needle in (
        "tdx",
        f"MRTD            {mrtd}",
        "RTMR3",
        "binding         matches",
        f"({data.quoted_at})",
        f"({data.expiration})",
        "collateral      carried",
    ):
        assert needle in shown, needle  # fmt: skip

    described = json.loads(ok(run("inspect", ticket, "--json")).stdout)
    assert described["simulated"] is True and described["binding"] == "not checked"
    assert described["measurements"]["mrtd"] == mrtd and described["debug"] is False
    assert described["quote"]["version"] == 4
    peer_elsewhere = ("--peer", PEER, "--network", "other", "--start-ms", START_MS)
    assert "DOES NOT MATCH" in ok(run("inspect", ticket, *peer_elsewhere)).stdout

    verified = ok(verify_tdx(ticket, simulated, "--simulated-root", simulated["state"]))
    assert verified.stdout.startswith("VALID SIMULATED TDX ticket")
    assert f"({data.expiration})" in verified.stdout
    root_pem = simulated["root"] / "root.pem"
    root_pem.write_bytes(SimulatedPlatform.open(simulated["state"]).root_ca_pem)
    ok(verify_tdx(ticket, simulated, "--root-ca", root_pem))


def test_tdx_rejections_name_the_check(simulated: dict[str, Path], tmp_path: Path) -> None:
    ticket, root = simulated["ticket"], ("--simulated-root", simulated["state"])
    rejected(verify_tdx(ticket, simulated, *root, peer=OTHER_PEER), "binding")
    rejected(verify_tdx(ticket, simulated, *root, network="other"), "binding")
    rejected(verify_tdx(ticket, simulated, *root, start_ms="1750000000001"), "binding")
    message = rejected(verify_tdx(ticket, simulated), "quote")  # Intel's root by default
    assert "signature_chain.root" in message
    rejected(verify_tdx(ticket, simulated, *root, "--at", "2999-01-01T00:00:00Z"), "expiration")

    # A node quoting other measurements is refused by the policy, naming the register.
    measurements = tmp_path / "measurements.json"
    measurements.write_text(json.dumps({"mrtd": "ab" * 48}))
    outsider = tmp_path / "outsider.ticket"
    ok(run("mint", "tdx", "--simulate", "--state-dir", simulated["state"], "--measurements",
           measurements, *TDX_STATEMENT, "--expires-in", "1h", "--out", outsider))  # fmt: skip
    assert "measurements.mrtd" in rejected(verify_tdx(outsider, simulated, *root), "policy")


def test_tampered_tdx_ticket_is_rejected(simulated: dict[str, Path], tmp_path: Path) -> None:
    ticket = load_ticket(simulated["ticket"].read_text())
    data = decode_tdx_ticket(ticket.data)
    mrtd = SimulatedPlatform.open(simulated["state"]).td_defaults.mrtd
    quote = bytearray(data.quote)
    quote[data.quote.index(mrtd)] ^= 0x01  # signed, and outside the report data binding
    forged = encode_tdx_ticket(
        TdxTicketData(bytes(quote), data.quoted_at, data.expiration, data.collateral)
    )
    path = tmp_path / "forged.ticket"
    path.write_text(dump_ticket(forged))
    root = ("--simulated-root", simulated["state"])
    rejected(verify_tdx(path, simulated, *root), "quote")

    truncated = tmp_path / "truncated.ticket"
    truncated.write_text(dump_ticket(Ticket(TDX_CLASS, ticket.data[:-10])))
    rejected(verify_tdx(truncated, simulated, *root), "format")
    assert "format" in run("inspect", truncated).stderr


def test_mint_tdx_needs_configfs_tsm_or_simulate(tmp_path: Path) -> None:
    result = run("mint", "tdx", *TDX_STATEMENT, "--expires-in", "1h",
                 "--tsm-root", tmp_path / "no-tsm")  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no configfs-tsm" in result.stderr and "--simulate" in result.stderr
    assert not result.stdout


def test_tdx_usage_errors(
    simulated: dict[str, Path], tmp_path: Path, keys: dict[str, Path]
) -> None:
    mint = ("mint", "tdx", "--expires-in", "1h")
    usage_error(run(*mint, "--peer", PEER, "--simulate"), "--network and --start-ms")
    usage_error(run(*mint, *TDX_STATEMENT, "--state-dir", tmp_path), "only make sense with --sim")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mrtd": "zz"}))
    usage_error(run(*mint, *TDX_STATEMENT, "--simulate", "--state-dir", simulated["state"],
                    "--measurements", bad), "--measurements")  # fmt: skip

    ticket = simulated["ticket"]
    verify = ("verify", ticket, "--peer", PEER, "--policy", simulated["policy"])
    usage_error(run(*verify, "--simulated-root", simulated["state"]), "--network and --start-ms")
    usage_error(verify_tdx(ticket, simulated, "--simulated-root", tmp_path), "no simulated")
    usage_error(verify_tdx(ticket, simulated, "--simulated-root", simulated["state"],
                           "--root-ca", keys["ES256"]), "at most one")  # fmt: skip
    usage_error(verify_tdx(ticket, simulated, "--root-ca", keys["ES256"]), "not a certificate")
    usage_error(verify_tdx(ticket, simulated, "--issuer", "ops"), "--issuer only apply to JWT")
    usage_error(verify_tdx(ticket, simulated, "--jwt-key", keys["ES256.pub"]), "either JWT")
    not_policy = tmp_path / "policy.json"
    not_policy.write_text('{"measurements": 3}')
    usage_error(run("verify", ticket, *TDX_STATEMENT, "--policy", not_policy), "--policy")


def test_verify_refuses_a_ticket_of_the_other_class(
    simulated: dict[str, Path], tmp_path: Path, keys: dict[str, Path]
) -> None:
    message = rejected(verify_jwt(simulated["ticket"], keys), "class")
    assert "holds a tdx ticket" in message
    jwt_ticket = mint_jwt(tmp_path, keys)
    assert "holds a jwt ticket" in rejected(
        verify_tdx(jwt_ticket, simulated, "--simulated-root", simulated["state"]), "class"
    )


# -- help ----------------------------------------------------------------------------------------


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, f"{prefix}{name} ")
        else:
            found.append((prefix + name, command))
    return found


@pytest.mark.parametrize(("name", "command"), all_commands(ticket_group))
def test_every_command_help_ends_with_examples(name: str, command: click.Command) -> None:
    help_text = (command.help or "").strip()
    assert "Examples:" in help_text, name
    assert f"mosaik ticket {name}" in help_text.split("Examples:")[-1], name
    assert "Examples:" in ok(run(*name.split(), "--help")).stdout
