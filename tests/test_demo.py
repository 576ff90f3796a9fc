"""`make demo` stays true: the local cluster demo runs to completion and exits 0."""

from __future__ import annotations

from click.testing import CliRunner

from node.cli import main
from tests.conftest import TIME_FACTOR


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
