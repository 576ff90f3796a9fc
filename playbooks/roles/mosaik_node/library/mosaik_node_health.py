#!/usr/bin/python
"""Ansible module: wait until a mosaik node is healthy and has rejoined the catalog.

Runs on the node's host with its system Python (standard library only) and polls the node's
admin endpoint in one module run, so a slow host pays for one module start, not one per try.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: mosaik_node_health
short_description: Wait until a mosaik node is healthy and has rejoined the catalog
description:
  - Polls the node's admin endpoint (C(/healthz), C(/status)) until the node answers healthy,
    runs with the expected peer id, lists every expected peer in its catalog and, when its
    status has C(groups), is running and caught up in each (no group is stopped on the node,
    it knows the leader and has applied every entry it knows committed); fails with what is
    missing once I(timeout) has passed.
options:
  url:
    description: Base URL of the node's admin endpoint, e.g. C(http://127.0.0.1:9100).
    type: str
    required: true
  peer_id:
    description: The peer id (64 hex) the node must run with; empty to skip the check.
    type: str
    default: ""
  expect:
    description: Peers the catalog must list, as inventory hostname to peer id.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait before failing.
    type: float
    default: 300
  interval:
    description: Seconds between two polls.
    type: float
    default: 2
"""

RETURN = r"""
peer_id:
  description: The node's peer id as it reports it.
  type: str
  returned: success
catalog:
  description: How many peers the node's catalog lists.
  type: int
  returned: success
waited:
  description: Seconds until the node was healthy.
  type: float
  returned: always
"""

Fetch = Callable[[str], tuple[int, bytes]]


def fetch(url: str) -> tuple[int, bytes]:
    """(HTTP status, body) of a GET; status 0 when the node does not answer at all."""
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return int(reply.status), bytes(reply.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except (urllib.error.URLError, OSError, ValueError):
        return 0, b""


def assess(
    healthz: int, status: Mapping[str, Any] | None, peer_id: str, expect: Mapping[str, str]
) -> list[str]:
    """What keeps the node from counting as healthy (an empty list: it is healthy)."""
    if healthz == 0:
        return ["the admin endpoint does not answer"]
    problems = []
    if healthz != 200:
        problems.append(f"/healthz answers {healthz}")
    if status is None:
        return [*problems, "/status is not a JSON object"]
    running = status.get("peer_id")
    if peer_id and running != peer_id:
        problems.append(f"the node runs as peer {str(running)[:16]}, not {peer_id[:16]} (its key)")
    catalog = status.get("catalog")
    listed = {
        entry.get("peer_id")
        for entry in (catalog if isinstance(catalog, list) else [])
        if isinstance(entry, dict)
    }
    missing = sorted(host for host, peer in expect.items() if peer not in listed)
    if missing:
        problems.append(
            f"its catalog lacks {len(missing)} of {len(expect)} expected peer(s): "
            + ", ".join(f"{host} ({expect[host][:16]})" for host in missing)
        )
    problems += _group_problems(status.get("groups"))
    return problems


def _group_problems(groups: object) -> list[str]:
    """Groups this node is not caught up in (a status without groups has none)."""
    if isinstance(groups, dict):
        entries = [(str(name), value) for name, value in sorted(groups.items())]
    elif isinstance(groups, list):
        entries = [
            (str(value.get("name", value.get("group_id", index)))[:16], value)
            for index, value in enumerate(groups)
            if isinstance(value, dict)
        ]
    else:
        return []
    groups_ = [(name, value) for name, value in entries if isinstance(value, dict)]
    stopped = [f"{name} ({_stop_reason(value)})" for name, value in groups_ if _stopped(value)]
    lagging = [name for name, value in groups_ if not _stopped(value) and not _caught_up(value)]
    problems = [f"stopped in group(s) {', '.join(stopped)}"] if stopped else []
    return problems + ([f"not caught up in group(s) {', '.join(lagging)}"] if lagging else [])


def _stopped(group: Mapping[str, Any]) -> bool:
    """The group stopped on this node (its storage or driver failed; it retries by itself)."""
    return bool(group.get("stopped")) or group.get("role") == "stopped"


def _stop_reason(group: Mapping[str, Any]) -> str:
    stopped = group.get("stopped")
    reason = stopped.get("reason") if isinstance(stopped, dict) else None
    return str(reason or "unknown reason")


def _caught_up(group: Mapping[str, Any]) -> bool:
    """A member knows its leader and has applied everything it knows to be committed."""
    if "caught_up" in group:
        return bool(group["caught_up"])
    applied, committed = group.get("applied_index"), group.get("commit_index")
    if group.get("leader") is None or not isinstance(applied, int):
        return False
    return not isinstance(committed, int) or applied >= committed


def wait_healthy(
    url: str,
    peer_id: str,
    expect: Mapping[str, str],
    timeout: float,
    interval: float,
    get: Fetch = fetch,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[str], dict[str, Any], float]:
    """Poll until healthy or ``timeout``: (remaining problems, last status, seconds waited)."""
    started = clock()
    while True:
        healthz, _ = get(url.rstrip("/") + "/healthz")
        status = _status(get(url.rstrip("/") + "/status")) if healthz else None
        problems = assess(healthz, status, peer_id, expect)
        waited = clock() - started
        if not problems or waited >= timeout:
            return problems, status or {}, waited
        sleep(min(interval, max(0.0, timeout - waited)))


def _status(reply: tuple[int, bytes]) -> dict[str, Any] | None:
    code, body = reply
    if code != 200:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "peer_id": {"type": "str", "default": ""},
            "expect": {"type": "dict", "default": {}},
            "timeout": {"type": "float", "default": 300.0},
            "interval": {"type": "float", "default": 2.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    expect = {str(host): str(peer) for host, peer in (params["expect"] or {}).items()}
    problems, status, waited = wait_healthy(
        params["url"], params["peer_id"], expect, params["timeout"], params["interval"]
    )
    if problems:
        module.fail_json(
            msg=(
                f"the node at {params['url']} is not healthy after {waited:.0f} s: "
                + "; ".join(problems)
                + ". The rollout stops here: hosts in later batches are left as they are."
            ),
            waited=round(waited, 1),
        )
    catalog = status.get("catalog")
    module.exit_json(
        changed=False,
        peer_id=status.get("peer_id"),
        catalog=len(catalog) if isinstance(catalog, list) else 0,
        waited=round(waited, 1),
    )


if __name__ == "__main__":
    main()
