"""A group that stops on this node (a full disk, a failing driver) says so and recovers.

The disk is filled deterministically: ``DiskFull`` makes SQLite's own error ("database or disk
is full") surface inside the storage's write transaction, and when opening the file, for the
paths it is told, until it is cleared. Everything else (translation into ``StorageError``, the
rollback, the runtime's reaction) is the real code.
"""

from __future__ import annotations

import asyncio
import errno
import json
import random
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from node.groups import GroupStopped, GroupTerminated, SqliteStorage
from node.groups.raft import CorruptStorage, Role, StorageError
from node.groups.stopped import REASONS, RETRY_CAP, RETRY_FIRST, backoff, classify
from tests.conftest import deadline, http_get, wait_until
from tests.groups.live import MakeNode, Put, converged, join, key, peer_of


class DiskFull:
    """Fails SQLite writes and opens of the files under ``full`` as a full disk would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full: set[Path] = set()
        self.failed_writes = 0
        real_transaction = SqliteStorage._transaction
        real_open = SqliteStorage._open
        fault = self

        @contextmanager
        def transaction(storage: SqliteStorage) -> Iterator[sqlite3.Connection]:
            with real_transaction(storage) as db:
                if fault.hits(storage):
                    fault.failed_writes += 1
                    raise sqlite3.OperationalError("database or disk is full")
                yield db

        def open_(storage: SqliteStorage, verify: bool) -> None:
            with storage._translate():
                if fault.hits(storage):
                    raise sqlite3.OperationalError("database or disk is full")
            real_open(storage, verify)

        monkeypatch.setattr(SqliteStorage, "_transaction", transaction)
        monkeypatch.setattr(SqliteStorage, "_open", open_)

    def hits(self, storage: SqliteStorage) -> bool:
        return any(Path(storage.path).is_relative_to(d) for d in self.full)


def metric(exposition: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels``."""
    for line in exposition.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in the exposition")


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> DiskFull:
    return DiskFull(monkeypatch)


async def test_a_full_disk_stops_the_group_visibly_and_it_recovers_once_freed(
    make_node: MakeNode, tmp_path: Path, disk: DiskFull
) -> None:
    data = tmp_path / "node"
    net = await make_node(data_dir=data, secret_key=key(5), metrics_addr="127.0.0.1:0")
    group = await join(net)
    await group.when.is_leader()
    acked = [(await group.execute(Put(f"k{i}", i))).index for i in range(5)]
    assert (await http_get(net.admin_addr, "/healthz"))[0] == 200

    disk.full.add(data)
    with pytest.raises(GroupStopped) as info:
        await group.execute(Put("lost", 99))
    assert info.value.reason == "storage_full"
    assert info.value.commands == (Put("lost", 99),)
    assert "disk is full" in str(info.value)

    # /status: the group shows as stopped, with its reason; no leader is claimed.
    code, body = await http_get(net.admin_addr, "/status")
    status = json.loads(body)["groups"][0]
    assert code == 200 and status["role"] == "stopped" and status["leader"] is None
    assert status["stopped"]["reason"] == "storage_full"
    assert "disk is full" in status["stopped"]["error"]
    assert status["stopped"]["since"] > 0
    # /healthz fails with the reason; the metrics count the stop.
    code, body = await http_get(net.admin_addr, "/healthz")
    assert code == 503 and b"storage_full" in body and group.id.short().encode() in body
    exposition = net.metrics.exposition().decode()
    gid = group.id.short()
    assert metric(exposition, "mosaik_groups_stopped", group=gid, reason="storage_full") == 1
    assert metric(exposition, "mosaik_groups_stopped", group=gid, reason="internal") == 0
    assert metric(exposition, "mosaik_groups_stops_total", group=gid, reason="storage_full") == 1
    # Calls during the stop fail at once with the reason; the handle is not closed.
    with pytest.raises(GroupStopped):
        await group.execute(Put("during", 1))
    with pytest.raises(GroupStopped):
        await group.query(Put("k1", 0), "strong")
    assert not group.online and group.leader is None and not group.is_leader
    # It keeps retrying (re-opening the file fails while the disk is full).
    await wait_until(lambda: group.status()["stopped"]["retries"] >= 1, 5, "a retry")

    disk.full.clear()
    started = asyncio.get_running_loop().time()
    await wait_until(lambda: group.is_leader, 10, "the group recovers")
    recovery = asyncio.get_running_loop().time() - started
    assert recovery < deadline(5)
    assert "stopped" not in group.status() and group.status()["role"] == "leader"
    assert (await http_get(net.admin_addr, "/healthz"))[0] == 200
    exposition = net.metrics.exposition().decode()
    assert metric(exposition, "mosaik_groups_stopped", group=gid, reason="storage_full") == 0
    assert metric(exposition, "mosaik_groups_recoveries_total", group=gid) == 1

    # The same handle works again; nothing acknowledged was lost, the refused write is absent.
    after = await group.execute(Put("after", 7))
    assert after.index > acked[-1]
    assert group.state_machine.data == {**{f"k{i}": i for i in range(5)}, "after": 7}
    await net.close()
    again = await make_node(data_dir=data, secret_key=key(5))
    reopened = await join(again)
    assert reopened.state_machine.data == {**{f"k{i}": i for i in range(5)}, "after": 7}
    assert reopened.applied >= after.index


async def test_a_stopped_follower_rejoins_and_catches_up(
    make_node: MakeNode, tmp_path: Path, disk: DiskFull
) -> None:
    nets = [await make_node(data_dir=tmp_path / f"n{n}") for n in range(3)]
    groups = [await join(net, bootstrap_expect=3) for net in nets]
    leader = await converged(groups, voters=3)
    n, follower = next((n, g) for n, g in enumerate(groups) if g is not leader)
    data = tmp_path / f"n{n}"
    await leader.execute(Put("before", 1))
    await follower.when.committed().reaches(leader.committed)

    disk.full.add(data)
    await leader.execute(Put("during", 2))  # the other two commit it
    await wait_until(lambda: "stopped" in follower.status(), 10, "the follower stops")
    assert follower.status()["stopped"]["reason"] == "storage_full"
    for n in range(3, 8):
        await leader.execute(Put(f"more{n}", n))

    with pytest.raises(GroupStopped):  # waiting on a stopped group fails rather than hangs
        await follower.when.committed().reaches(leader.committed)

    disk.full.clear()
    await wait_until(lambda: "stopped" not in follower.status(), 10, "the follower recovers")
    await follower.when.committed().reaches(leader.committed)
    assert follower.state_machine.data == leader.state_machine.data
    assert follower.role is Role.FOLLOWER and peer_of(follower) in leader.members.voters
    done = await follower.execute(Put("from the follower", 9))  # forwarded to the leader
    await leader.when.committed().reaches(done.index)


async def test_a_failure_during_join_is_still_raised_by_join(
    make_node: MakeNode, tmp_path: Path, disk: DiskFull
) -> None:
    data = tmp_path / "node"
    disk.full.add(data)
    net = await make_node(data_dir=data)
    with pytest.raises(Exception, match="disk is full"):
        await join(net)
    assert len(net.groups) == 0


def test_group_stopped_is_a_commands_not_applied_error() -> None:
    assert not issubclass(GroupStopped, GroupTerminated)


def test_reasons_are_bounded_labels() -> None:
    path = "/data/groups/g.sqlite"
    assert classify(StorageError("database or disk is full", path)) == "storage_full"
    assert classify(OSError(errno.ENOSPC, "No space left on device")) == "storage_full"
    assert classify(CorruptStorage("not a usable Raft log", path)) == "storage_corrupt"
    assert classify(StorageError("disk I/O error", path)) == "storage_error"
    assert classify(RuntimeError("the machine cannot apply boom")) == "internal"
    assert {classify(e) for e in (ValueError(), KeyError(), AssertionError())} <= set(REASONS)


def test_backoff_doubles_up_to_its_cap_with_some_jitter() -> None:
    rng = random.Random(7)
    delays = [backoff(attempt, rng) for attempt in range(12)]
    assert RETRY_FIRST * 0.8 <= delays[0] <= RETRY_FIRST
    assert all(0.8 * RETRY_FIRST * 2**n <= d for n, d in enumerate(delays[:6]))
    assert all(d <= RETRY_CAP for d in delays) and delays[-1] >= 0.8 * RETRY_CAP
    assert backoff(10_000, rng) <= RETRY_CAP
