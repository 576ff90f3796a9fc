"""The rollout's health gate (module mosaik_node_health): what counts as healthy, and the
module run by ansible against a stand-in admin endpoint on loopback."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

pytest.importorskip("ansible", reason="the deploy extra (ansible-core) is not installed")

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks/roles/mosaik_node/library"
ME, A, B = "aa" * 32, "bb" * 32, "cc" * 32


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "mosaik_node_health", LIBRARY / "mosaik_node_health.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


health = _module()


def _status(*catalog: str, peer: str = ME, **extra: Any) -> dict[str, Any]:
    return {"peer_id": peer, "catalog": [{"peer_id": p} for p in catalog], **extra}


def test_healthy_when_every_expected_peer_is_listed() -> None:
    assert health.assess(200, _status(A, B), ME, {"a": A, "b": B}) == []


def test_missing_peers_are_named_by_host() -> None:
    problems = health.assess(200, _status(A), ME, {"a": A, "b": B})
    assert problems == [f"its catalog lacks 1 of 2 expected peer(s): b ({B[:16]})"]


def test_unhealthy_endpoint_and_wrong_identity() -> None:
    assert health.assess(0, None, ME, {}) == ["the admin endpoint does not answer"]
    problems = health.assess(503, _status(peer=A), ME, {})
    assert problems[0] == "/healthz answers 503"
    assert "runs as peer" in problems[1] and "(its key)" in problems[1]


def test_groups_must_be_caught_up_when_reported() -> None:
    def group(gid: str, leader: str | None, applied: int, committed: int) -> dict[str, Any]:
        return {"group_id": gid, "leader": leader, "applied_index": applied,
                "commit_index": committed}  # fmt: skip

    caught_up = _status(groups=[group("11" * 32, A, 7, 7)])
    assert health.assess(200, caught_up, ME, {}) == []
    behind = _status(groups=[group("11" * 32, A, 7, 7), group("22" * 32, A, 5, 9)])
    assert health.assess(200, behind, ME, {}) == [f"not caught up in group(s) {'22' * 8}"]
    leaderless = _status(groups=[group("33" * 32, None, 9, 9)])
    assert health.assess(200, leaderless, ME, {}) == [f"not caught up in group(s) {'33' * 8}"]
    explicit = _status(groups={"orders": {"caught_up": False}, "prices": {"caught_up": True}})
    assert health.assess(200, explicit, ME, {}) == ["not caught up in group(s) orders"]


def test_a_stopped_group_fails_the_gate_with_its_reason() -> None:
    # What a node shows once a group stopped (a full disk): its last applied index still
    # equals its commit index, which alone would pass as caught up.
    stopped = {"group_id": "44" * 32, "role": "stopped", "leader": None, "applied_index": 9,
               "commit_index": 9, "stopped": {"reason": "storage_full", "retries": 2}}  # fmt: skip
    problems = health.assess(503, _status(groups=[stopped]), ME, {})
    assert problems == ["/healthz answers 503", f"stopped in group(s) {'44' * 8} (storage_full)"]
    leading = {**stopped, "role": "leader", "leader": ME}  # even if the role looked fine
    assert health.assess(200, _status(groups=[leading]), ME, {}) == [
        f"stopped in group(s) {'44' * 8} (storage_full)"
    ]


def test_wait_polls_until_healthy() -> None:
    replies = iter([_status(), _status(A)])
    clock = iter(float(t) for t in range(100))

    def get(url: str) -> tuple[int, bytes]:
        if url.endswith("/healthz"):
            return 200, b"ok\n"
        return 200, json.dumps(next(replies)).encode()

    problems, status, _ = health.wait_healthy(
        "http://node", ME, {"a": A}, 30, 1, get=get, clock=lambda: next(clock), sleep=lambda s: None
    )
    assert problems == [] and status["catalog"] == [{"peer_id": A}]


def test_wait_gives_up_at_the_timeout() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    problems, _, waited = health.wait_healthy(
        "http://node", ME, {}, 10, 3, get=lambda url: (0, b""), clock=lambda: now[0], sleep=sleep
    )
    assert problems == ["the admin endpoint does not answer"] and waited == 10


class _Admin(BaseHTTPRequestHandler):
    status: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        body = b"ok\n" if self.path == "/healthz" else json.dumps(self.status).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def admin() -> Iterator[tuple[str, type[_Admin]]]:
    handler = type("Admin", (_Admin,), {"status": _status(A)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        thread.join()


def _run_module(args: dict[str, Any]) -> tuple[int, str]:
    argv = [sys.executable, "-m", "ansible", "adhoc", "localhost", "-M", str(LIBRARY)]
    argv += ["-e", f"ansible_python_interpreter={sys.executable}", "-m", "mosaik_node_health"]
    result = subprocess.run(
        [*argv, "-a", json.dumps(args)],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1"),
    )
    return result.returncode, result.stdout + result.stderr


def test_module_succeeds_against_a_healthy_node(admin: tuple[str, type[_Admin]]) -> None:
    url, _ = admin
    code, output = _run_module({"url": url, "peer_id": ME, "expect": {"a": A}, "timeout": 5})
    assert code == 0, output
    assert '"catalog": 1' in output


def test_module_stops_the_rollout_with_what_is_missing(admin: tuple[str, type[_Admin]]) -> None:
    url, _ = admin
    args = {"url": url, "peer_id": ME, "expect": {"a": A, "b": B}, "timeout": 1, "interval": 0.2}
    code, output = _run_module(args)
    assert code != 0
    assert "lacks 1 of 2 expected peer(s): b" in output
    assert "The rollout stops here" in output
