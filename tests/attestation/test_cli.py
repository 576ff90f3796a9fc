"""``mosaik attest``: quote, verify, policy new/check (CliRunner, no network, no hardware)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from attestation.cli import attest
from tests.attestation.vectors import DATA, V4_MRTD

QUOTE = str(DATA / "dcap-qvl_tdx_quote.bin")
COLLATERAL = str(DATA / "dcap-qvl_tdx_quote_collateral.json")
INSIDE = "2025-07-01T00:00:00Z"
SIM_AT = "1750000000"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(attest, [str(a) for a in args])


@pytest.fixture
def simulated(tmp_path: Path) -> Path:
    result = run(
        "quote", "--simulate", "--state-dir", tmp_path / "state", "--report-data", "ab" * 4,
        "--out", tmp_path / "q.bin", "--collateral-out", tmp_path / "c.json",
        "--root-ca-out", tmp_path / "root.der", "--at", SIM_AT,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "SIMULATED" in result.stderr
    return tmp_path


def test_quote_refuses_without_configfs_tsm(tmp_path: Path) -> None:
    result = run("quote", "--report-data", "00", "--tsm-root", tmp_path / "none")
    assert result.exit_code == 1
    assert "no configfs-tsm" in result.stderr and "--simulate" in result.stderr


def test_quote_options_need_simulate_and_report_data_is_checked(tmp_path: Path) -> None:
    result = run("quote", "--report-data", "00", "--state-dir", tmp_path)
    assert result.exit_code == 2 and "--simulate" in result.stderr
    result = run("quote", "--simulate", "--report-data", "zz")
    assert result.exit_code == 2 and "not hexadecimal" in result.stderr
    result = run("quote", "--simulate", "--report-data", "00" * 65)
    assert result.exit_code == 2


def test_simulated_quote_prints_hex_labelled_simulated(tmp_path: Path) -> None:
    result = run("quote", "--simulate", "--state-dir", tmp_path, "--report-data", "0x01")
    assert result.exit_code == 0
    assert result.stderr.startswith("SIMULATED")
    raw = bytes.fromhex(result.stdout.strip())
    assert raw[568:632] == b"\x01" + bytes(63)


def test_simulated_round_trip_through_policy_and_verify(simulated: Path) -> None:
    policy = simulated / "policy.json"
    result = run(
        "policy", "new", "--from-quote", simulated / "q.bin", "--id", "sim", "--out", policy
    )
    assert result.exit_code == 0, result.output
    args: list[str | Path] = ["verify", simulated / "q.bin", "--collateral", simulated / "c.json"]
    args += ["--policy", policy]
    accepted = run(*args, "--root-ca", simulated / "root.der", "--at", "1750000100")
    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout.startswith("ACCEPTED (SIMULATED")
    assert "measurement id   sim" in accepted.stdout
    as_json = run(*args, "--root-ca", simulated / "root.der", "--at", "1750000100", "--json")
    report = json.loads(as_json.stdout)
    assert report["accepted"] and report["simulated"] and report["matched_measurement_id"] == "sim"
    wrong_data = run(*args, "--root-ca", simulated / "root.der", "--at", "1750000100",
                     "--report-data", "cd")  # fmt: skip
    assert wrong_data.exit_code == 1 and "rule report_data" in wrong_data.stderr
    intel_only = run(*args, "--at", "1750000100")
    assert intel_only.exit_code == 1 and "signature_chain.root" in intel_only.stderr


def test_verify_real_quote_accepts_and_rejects_with_rule_named(tmp_path: Path) -> None:
    any_policy = tmp_path / "any.json"
    assert run("policy", "new", "--any-measurements", "--out", any_policy).exit_code == 0
    ok = run("verify", QUOTE, "--collateral", COLLATERAL, "--policy", any_policy, "--at", INSIDE)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("ACCEPTED\n") and "UpToDate" in ok.stdout
    assert V4_MRTD.hex() in ok.stdout
    late = run("verify", QUOTE, "--collateral", COLLATERAL, "--policy", any_policy,
               "--at", "2025-08-01", "--json")  # fmt: skip
    assert late.exit_code == 1
    assert json.loads(late.stdout) == {
        "accepted": False,
        "rule": "collateral.expired",
        "detail": "collateral expired at 2025-07-19T10:00:35+00:00",
    }
    pinned = tmp_path / "pinned.json"
    pinned.write_text(
        json.dumps([{"measurement_id": "x", "measurements": {"mrtd": {"expected": "00" * 48}}}])
    )
    wrong = run("verify", QUOTE, "--collateral", COLLATERAL, "--policy", pinned, "--at", INSIDE)
    assert wrong.exit_code == 1 and "REJECTED by rule measurements.mrtd" in wrong.stderr


def test_verify_usage_errors(tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text('{"measurements": "any", "bogus": 1}')
    both = run(
        "verify", QUOTE, "--collateral", COLLATERAL, "--pccs", "https://x", "--policy", policy
    )
    assert both.exit_code == 2 and "exactly one" in both.stderr
    bad_policy = run("verify", QUOTE, "--collateral", COLLATERAL, "--policy", policy)
    assert bad_policy.exit_code == 2 and "bogus" in bad_policy.stderr
    bad_time = run("verify", QUOTE, "--collateral", COLLATERAL, "--policy", policy, "--at", "soon")
    assert bad_time.exit_code == 2
    sgx = run(
        "verify", DATA / "dcap-qvl_sgx_quote.bin", "--collateral", COLLATERAL, "--policy", policy
    )
    assert sgx.exit_code == 1 and "header.tee_type" in sgx.stderr


def test_policy_new_from_measurements_and_check(tmp_path: Path) -> None:
    measurements = tmp_path / "image.json"
    measurements.write_text(json.dumps({"mrtd": V4_MRTD.hex(), "notes": "built twice"}))
    policy = tmp_path / "policy.json"
    made = run("policy", "new", "--from-measurements", measurements, "--allow-status",
               "SWHardeningNeeded", "--out", policy)  # fmt: skip
    assert made.exit_code == 0, made.output
    doc = json.loads(policy.read_text())
    assert doc["tcb_statuses"] == ["SWHardeningNeeded", "UpToDate"]
    assert doc["measurements"][0]["measurement_id"] == "image"
    checked = run("policy", "check", policy, "--quote", QUOTE)
    assert checked.exit_code == 0, checked.output
    assert "measurement      image: mrtd" in checked.stdout
    assert "signature and TCB status were not checked" in checked.stdout
    other = run("policy", "check", policy, "--quote", DATA / "go-tdx-guest_quote_v5_sample.bin")
    assert other.exit_code == 1 and "measurements.mrtd" in other.stderr


def test_policy_new_usage_errors(tmp_path: Path) -> None:
    assert run("policy", "new").exit_code == 2
    assert run("policy", "new", "--any-measurements", "--from-quote", QUOTE).exit_code == 2
    assert run("policy", "new", "--from-quote", QUOTE, "--id", "a", "--id", "b").exit_code == 2
    assert run("policy", "new", "--any-measurements", "--allow-status", "Fine").exit_code == 2
    empty = tmp_path / "m.json"
    empty.write_text("{}")
    assert run("policy", "new", "--from-measurements", empty).exit_code == 2
    stdout = run("policy", "new", "--any-measurements")
    assert json.loads(stdout.stdout)["measurements"] == "any"


def test_policy_check_reports_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        '{"measurements": [{"measurement_id": "x", "measurements": {"mrtd": {"expected": "00"}}}]}'
    )
    result = run("policy", "check", path)
    assert result.exit_code == 1
    assert "measurements[0].measurements.mrtd.expected" in result.stderr


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, f"{prefix}{name} ")
        else:
            found.append((prefix + name, command))
    return found


@pytest.mark.parametrize(("name", "command"), all_commands(attest))
def test_every_command_help_ends_with_examples(name: str, command: click.Command) -> None:
    help_text = (command.help or "").strip()
    assert "Examples:" in help_text, name
    assert "mosaik attest" in help_text.split("Examples:")[-1], name
