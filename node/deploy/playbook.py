"""Running ``ansible-playbook`` on ``playbooks/site.yml``: its command line, environment and
output, streamed line by line as it comes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.deploy.errors import AnsibleMissing, DeployError, PlaybookFailed

PLAYBOOK_ENV: Final = "MOSAIK_PLAYBOOK"
DEFAULT_INTERPRETER: Final = "/usr/bin/python3"


@dataclass(frozen=True, slots=True)
class PlaybookRun:
    """One ``ansible-playbook`` run of the rollout."""

    inventory: Path
    playbook: Path
    check: bool = False
    diff: bool = False
    limit: str | None = None
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()
    wheelhouse: Path | None = None
    vault_password_file: Path | None = None
    extra_vars: tuple[str, ...] = ()
    interpreter: str = DEFAULT_INTERPRETER
    verbosity: int = 0


def default_playbook() -> Path:
    """``$MOSAIK_PLAYBOOK``, or ``playbooks/site.yml`` of the source tree this runs from."""
    configured = os.environ.get(PLAYBOOK_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "playbooks" / "site.yml"


def playbook_command(run: PlaybookRun) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of the run (the interpreter is always set explicitly)."""
    if not run.playbook.is_file():
        raise DeployError(
            f"{run.playbook}: no playbook; pass --playbook or set {PLAYBOOK_ENV} "
            "(the playbooks ship in the source tree, not in the wheel)"
        )
    if not run.inventory.exists():
        raise DeployError(f"{run.inventory}: no such inventory file or directory")
    argv = [sys.executable, "-m", "ansible", "playbook", "-i", str(run.inventory)]
    if run.check:
        argv.append("--check")
    if run.diff:
        argv.append("--diff")
    if run.limit:
        argv += ["--limit", run.limit]
    if run.tags:
        argv += ["--tags", ",".join(run.tags)]
    if run.skip_tags:
        argv += ["--skip-tags", ",".join(run.skip_tags)]
    if run.wheelhouse is not None:
        argv += ["-e", f"mosaik_node_wheelhouse={run.wheelhouse.resolve()}"]
    if run.vault_password_file is not None:
        argv += ["--vault-password-file", str(run.vault_password_file)]
    for extra in run.extra_vars:
        argv += ["-e", extra]
    if run.verbosity:
        argv.append("-" + "v" * run.verbosity)
    argv.append(str(run.playbook))
    env = dict(os.environ)
    # The project's settings (pipelining, no retry files), unless the operator has their own.
    config = run.playbook.parent / "ansible.cfg"
    if "ANSIBLE_CONFIG" not in env and config.is_file():
        env["ANSIBLE_CONFIG"] = str(config)
    # Never interpreter discovery: hosts without ansible_python_interpreter use this one.
    env["ANSIBLE_PYTHON_INTERPRETER"] = run.interpreter
    env.setdefault("PYTHONUNBUFFERED", "1")
    return argv, env


def run_playbook(run: PlaybookRun, echo: Callable[[str], None]) -> None:
    """Run it, each output line to ``echo`` as it arrives; ``PlaybookFailed`` if it fails."""
    argv, env = playbook_command(run)
    returncode = stream(argv, env, echo)
    if returncode != 0:
        raise PlaybookFailed(returncode)


def stream(argv: Sequence[str], env: Mapping[str, str], echo: Callable[[str], None]) -> int:
    """Run ``argv`` with stderr merged into stdout, echoing lines; its exit code."""
    _require_ansible()
    try:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as exc:
        raise DeployError(f"cannot run {argv[0]}: {exc.strerror}") from None
    assert process.stdout is not None
    try:
        for line in process.stdout:
            echo(line.rstrip("\n"))
    except BaseException:
        process.terminate()
        process.wait()
        raise
    return process.wait()


def _require_ansible() -> None:
    try:
        import ansible  # noqa: F401
    except ImportError:
        raise AnsibleMissing("mosaik deploy") from None
