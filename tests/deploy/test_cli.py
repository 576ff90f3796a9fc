"""``mosaik deploy`` through click's CliRunner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")

from node.deploy.cli import deploy_group
from node.deploy.keys import VAULT_FILE, read_secret_keys
from node.deploy.playbook import PlaybookRun, playbook_command
from node.deploy.vault import PASSWORD_ENV, VaultPassword
from tests.deploy.fakes import (
    PASSWORD,
    SITE,
    fake_root_vars,
    fake_wheelhouse,
    write_inventory,
    write_password,
)


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(deploy_group, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_help_lists_the_commands_and_examples() -> None:
    code, output = _invoke("--help")
    assert code == 0
    assert all(name in output for name in ("run", "keys", "wheelhouse", "Examples:"))


def test_keys_writes_the_vault_and_prints_no_secret(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv", {"a": ["seed"], "b": []}, {})
    password = write_password(tmp_path / "pw")
    code, output = _invoke(
        "keys", "-i", str(inventory), "--vault-password-file", str(password.file)
    )
    assert code == 0, output
    secrets = read_secret_keys(tmp_path / "inv/group_vars/all" / VAULT_FILE, password)
    assert set(secrets) == {"a", "b"}
    assert not any(secret in output for secret in secrets.values())
    assert "2 new, 0 kept; 1 seed(s)" in output
    code, output = _invoke("keys", "-i", str(inventory), env={PASSWORD_ENV: PASSWORD})
    assert code == 0 and "0 new, 2 kept" in output


def test_keys_needs_a_password_and_seeds(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv", {"a": [], "b": []}, {})
    code, output = _invoke("keys", "-i", str(inventory), env={PASSWORD_ENV: ""})
    assert code == 1 and PASSWORD_ENV in output
    code, output = _invoke("keys", "-i", str(inventory), env={PASSWORD_ENV: "x"})
    assert code == 1 and "no seed nodes" in output
    code, output = _invoke(
        "keys", "-i", str(inventory), "--seed-count", "1", env={PASSWORD_ENV: "x"}
    )
    assert code == 0 and "1 seed(s)" in output


def test_inventory_alone_runs_the_rollout_and_keeps_ansibles_exit_code(tmp_path: Path) -> None:
    """A bad inventory fails in preflight: the output streams through, the code is ansible's."""
    wheelhouse = fake_wheelhouse(tmp_path / "wh", "0.0.1")
    variables = {**fake_root_vars(tmp_path / "root", wheelhouse), "mosaik_node_network": "a b"}
    inventory = write_inventory(tmp_path / "inv", {"a": ["seed"]}, variables)
    code, output = _invoke(str(inventory), "--wheelhouse", str(wheelhouse), env={PASSWORD_ENV: ""})
    assert code == 2, output
    assert "PLAY [Check every mosaik node before changing any]" in output
    assert "is not a network name" in " ".join(output.split())
    assert "ansible-playbook exited with 2" in output


def test_missing_playbook_is_a_usage_error(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv", {"a": ["seed"]}, {})
    code, output = _invoke("run", str(inventory), "--playbook", str(tmp_path / "none.yml"))
    assert code == 2 and "does not exist" in output


def test_wheelhouse_needs_the_project_tree(tmp_path: Path) -> None:
    code, output = _invoke("wheelhouse", "--out", str(tmp_path / "wh"), "--source", str(tmp_path))
    assert code == 1 and "no pyproject.toml" in output


def test_playbook_command_sets_interpreter_config_and_flags(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv", {"a": ["seed"]}, {})
    run = PlaybookRun(
        inventory=inventory,
        playbook=SITE,
        check=True,
        diff=True,
        limit="a",
        tags=("mosaik_node_configure", "mosaik_node_run"),
        wheelhouse=tmp_path,
        vault_password_file=tmp_path / "pw",
        extra_vars=("mosaik_node_serial=2",),
        verbosity=2,
    )
    argv, env = playbook_command(run)
    assert argv[:4] == [sys.executable, "-m", "ansible", "playbook"]
    assert argv[-1] == str(SITE)
    for flag in ("--check", "--diff", "-vv"):
        assert flag in argv
    assert argv[argv.index("--limit") + 1] == "a"
    assert argv[argv.index("--tags") + 1] == "mosaik_node_configure,mosaik_node_run"
    assert f"mosaik_node_wheelhouse={tmp_path}" in argv
    assert "mosaik_node_serial=2" in argv
    assert env["ANSIBLE_PYTHON_INTERPRETER"] == "/usr/bin/python3"
    assert env.get("ANSIBLE_CONFIG", str(SITE.parent / "ansible.cfg")).endswith("ansible.cfg")


def test_password_never_in_the_argument_list(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv", {"a": ["seed"]}, {})
    run = PlaybookRun(inventory=inventory, playbook=SITE, vault_password_file=tmp_path / "pw")
    argv, _ = playbook_command(run)
    assert VaultPassword(PASSWORD.encode()).secret.decode() not in " ".join(argv)
