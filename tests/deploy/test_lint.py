"""The playbooks pass ansible-lint's production profile (the strictest)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.deploy.fakes import PLAYBOOKS

pytest.importorskip("ansiblelint", reason="ansible-lint (the dev extra) is not installed")


def test_playbooks_pass_the_production_profile() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ansiblelint",
            "--offline",
            "--nocolor",
            "--profile",
            "production",
            "site.yml",
            "roles",
        ],
        cwd=PLAYBOOKS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
