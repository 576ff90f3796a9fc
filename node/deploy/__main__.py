"""``python -m node.deploy``: the ``mosaik deploy`` commands without the ``mosaik`` script."""

from __future__ import annotations

from node.deploy.cli import deploy_group

deploy_group(prog_name="mosaik deploy")
