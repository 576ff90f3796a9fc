"""``python -m node.demo``: the local cluster demo (``NODES`` nodes, default 3)."""

import os

from node.demo.cluster import run_demo

raise SystemExit(run_demo(int(os.environ.get("NODES", "3"))))
