"""The mosaik CLI: click's runner for commands, one real process for ``node run``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from node import MosaikError
from node.cli import main, node_cmds
from node.cli.apps import load_app, run_apps
from node.demo import counter
from node.primitives import Digest, SecretKey
from tests.conftest import deadline


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "mosaik, version" in result.output


def test_id_prints_intent_address() -> None:
    result = CliRunner().invoke(main, ["id", "orders"])
    assert result.output.strip() == Digest.from_name("orders").hex()


def test_keygen_then_id(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "node.key"
    made = runner.invoke(main, ["node", "keygen", "--out", str(key)])
    assert made.exit_code == 0
    assert os.stat(key).st_mode & 0o777 == 0o600
    shown = runner.invoke(main, ["node", "id", str(key)])
    assert shown.output.strip() == made.output.strip() == SecretKey.from_file(key).peer_id.hex()
    again = runner.invoke(main, ["node", "keygen", "--out", str(key)])
    assert again.exit_code == 1 and "already exists" in again.output
    assert "Traceback" not in again.output


def test_user_errors_are_one_clear_line(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "open.key"
    SecretKey.generate().to_file(key)
    key.chmod(0o644)
    result = runner.invoke(main, ["node", "id", str(key)])
    assert result.exit_code == 1 and "chmod 600" in result.output
    bad = runner.invoke(main, ["node", "run", "--network", "x", "--bootstrap", "nope"])
    assert bad.exit_code == 2 and "not <peer-id>@host:port" in bad.output
    missing = runner.invoke(main, ["node", "run"], env={"MOSAIK_NETWORK": ""})
    assert missing.exit_code == 2 and "--network" in missing.output


def test_config_file_and_env_precedence(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[node]\nnetwork = "from-file"\nbind = "nonsense"\n')
    runner = CliRunner()
    # The file's bad bind is reported with the option's name ...
    result = runner.invoke(main, ["node", "run", "--config", str(config)])
    assert result.exit_code == 2 and "--bind" in result.output
    # ... and an env var overrides the file.
    result = runner.invoke(
        main, ["node", "run", "--config", str(config)], env={"MOSAIK_BIND": "127.0.0.1:bad"}
    )
    assert "127.0.0.1:bad" in result.output
    config.write_text('[node]\nnetwrok = "typo"\n')
    result = runner.invoke(main, ["node", "run", "--config", str(config)])
    assert result.exit_code == 2 and "unknown key(s) netwrok" in result.output
    # Every visible option is a key, in either spelling, and checked like the flag.
    config.write_text('[node]\nnetwork = "n"\npeer-ttl = 0.5\n')
    result = runner.invoke(main, ["node", "run", "--config", str(config)])
    assert result.exit_code == 2 and "--peer-ttl" in result.output
    config.write_text('[node]\nnetwork = "n"\nadvertise = ["10.0.0.5"]\n')
    result = runner.invoke(main, ["node", "run", "--config", str(config)])
    assert result.exit_code == 2 and "--advertise" in result.output
    assert "'10.0.0.5' is not host:port" in result.output


def test_node_run_real_process_starts_and_stops_cleanly(tmp_path: Path) -> None:
    key = tmp_path / "node.key"
    SecretKey.generate().to_file(key)
    env = {**os.environ, "MOSAIK_NETWORK": "cli-test", "MOSAIK_SECRET_FILE": str(key)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "node", "node", "run", "--bind", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"peer_id=(\w+) address=127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert match.group(1) == SecretKey.from_file(key).peer_id.hex()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=deadline(10)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_counter_group_runs_the_counter_demo_app() -> None:
    assert load_app(node_cmds.COUNTER_APP) is counter.run


def test_app_specs_that_do_not_resolve_are_one_clear_line() -> None:
    runner = CliRunner()
    for spec, error in [
        ("node.demo.counter", "is not MODULE:CALLABLE"),
        ("node.no_such_module:run", "cannot import node.no_such_module"),
        ("node.demo.counter:no_such_app", "node.demo.counter has no callable no_such_app"),
    ]:
        result = runner.invoke(main, ["node", "run", "--network", "x", "--app", spec])
        assert result.exit_code == 1, result.output
        (line,) = result.output.splitlines()
        assert line.startswith(f"Error: app {spec!r}") and error in line, line


async def test_apps_run_beside_the_node_until_it_stops() -> None:
    net, stop, started, ended = object(), asyncio.Event(), asyncio.Event(), []

    async def app(given: object) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(given)

    async def returns_early(given: object) -> None:
        pass

    running = asyncio.create_task(run_apps(net, [("a", app), ("b", returns_early)], stop))  # type: ignore[list-item]
    await started.wait()
    assert not running.done()
    stop.set()
    await running
    assert ended == [net]


async def test_an_app_that_fails_stops_the_node_with_its_error() -> None:
    async def forever(_net: object) -> None:
        await asyncio.Event().wait()

    async def broken(_net: object) -> None:
        raise MosaikError("the app broke")

    with pytest.raises(MosaikError, match="the app broke"):
        await run_apps(object(), [("ok", forever), ("bad", broken)], asyncio.Event())  # type: ignore[arg-type,list-item]
