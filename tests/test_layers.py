"""Each sans-I/O core imports on its own: no asyncio, sockets, QUIC, SQLite or the facade.

Every check runs in a fresh interpreter, since this one has long imported everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import node
from node.transport import errors as transport_errors

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("asyncio", "socket", "aioquic", "sqlite3", "node.network")
CORES = (
    "node",
    "node.primitives",
    "node.discovery.core",
    "node.streams.subscriptions",
    "node.groups.raft.core",
    "node.collections._machine",
)


def run(code: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("module", CORES)
def test_core_imports_no_io_machinery(module: str) -> None:
    loaded = run(f"import {module}, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == "[]", f"importing {module} loads {loaded}"


def test_facade_resolves_lazily_without_cycles() -> None:
    code = (
        "import sys, node; assert 'node.network' not in sys.modules; "
        "from node import Network; import node.network; assert Network is node.network.Network; "
        "print(sorted(set(node.__all__) - set(dir(node))))"
    )
    assert run(code) == "[]"


def test_transport_errors_keep_their_public_names() -> None:
    for name in ("TransportError", "ConnectError", "PeerMismatch", "ConnectionClosed"):
        assert getattr(node, name) is getattr(transport_errors, name)
    assert issubclass(node.DifferentNetwork, node.ConnectionClosed)
    assert issubclass(node.TransportError, node.MosaikError)
