"""`make demo` stays true: the local cluster demo runs to completion and exits 0.

The demos live apart from the runtime: the runtime never imports ``node.demo``, and the demos
use only the public API.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from node.cli import main
from tests.conftest import TIME_FACTOR, deadline

DEMO = Path(__file__).resolve().parents[1] / "node" / "demo"
# What a demo may import of mosaik: public packages (their __init__ exports) and other demos.
PUBLIC = {
    "attestation",
    "node",
    "node.admin",
    "node.collections",
    "node.groups",
    "node.primitives",
    "node.streams",
    "node.tickets",
    "node.transport",
}


def test_the_runtime_never_imports_the_demos() -> None:
    script = (
        "import sys, node, node.cli, node.network, node.groups, node.streams, node.collections\n"
        "print(sorted(m for m in sys.modules if m.startswith('node.demo')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=deadline(30)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_demos_use_only_the_public_api() -> None:
    for path in DEMO.glob("*.py"):
        for statement in ast.walk(ast.parse(path.read_text())):
            if isinstance(statement, ast.ImportFrom) and statement.module:
                names = [statement.module]
            elif isinstance(statement, ast.Import):
                names = [alias.name for alias in statement.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] in {"node", "attestation"}:
                    assert name in PUBLIC or name.startswith("node.demo"), f"{path.name}: {name}"


def test_demo_runs_the_local_cluster_and_exits_cleanly() -> None:
    result = CliRunner().invoke(main, ["demo"], env={"TIME_FACTOR": str(TIME_FACTOR)})
    assert result.exit_code == 0, result.output
    assert "every node discovered all 3 others" in result.output
    assert "rogue (SIMULATED quote with MRTD" in result.output
    assert "refused by node-0: STREAM_NOT_ALLOWED" in result.output
    assert "rogue runs the counter too and is refused by node-" in result.output
    assert "GROUP_NOT_ALLOWED (30403), policy: measurements.mrtd" in result.output
    assert "its increments acknowledged: 0" in result.output
    assert "killed the leader node-" in result.output
    assert "no committed increment was lost" in result.output
    assert "demo complete" in result.output
    # the killed leader is not stopped again; the other three leave cleanly
    assert result.output.count("exited with 0") == 3
