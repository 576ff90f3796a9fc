"""Group runtime: catching up, snapshots, elections decided by the log, restarts with SQLite."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from node.groups import Role
from node.transport import TransportConfig
from tests.conftest import wait_until
from tests.groups.live import FAST, Get, Kv, MakeNode, Put, converged, join, key, leader_of


@pytest.mark.parametrize("batch", [7, 1000])
async def test_late_follower_catches_up_200_commands(make_node: MakeNode, batch: int) -> None:
    consensus = msgspec.structs.replace(FAST, max_entries_per_message=batch)
    first = await join(await make_node(), bootstrap_expect=1, consensus=consensus)
    await first.when.is_leader()
    for start in range(0, 200, 50):
        await first.execute_many(Put(f"k{i}", i) for i in range(start, start + 50))
    late = await join(await make_node(), consensus=consensus)
    await late.when.committed().reaches(first.committed)
    assert late.state_machine.data == first.state_machine.data
    assert len(late.state_machine.data) == 200
    assert late.state_machine.history == first.state_machine.history


async def test_follower_behind_a_compacted_log_gets_a_chunked_snapshot(
    make_node: MakeNode,
) -> None:
    consensus = msgspec.structs.replace(FAST, snapshot_every=20)
    small_frames = TransportConfig(max_frame=64 * 1024)
    padding = 300 * 1024  # the snapshot spans several frames
    first = await join(
        await make_node(transport=small_frames),
        bootstrap_expect=1,
        consensus=consensus,
        machine=Kv(padding),
    )
    await first.when.is_leader()
    for i in range(60):
        await first.execute(Put(f"k{i}", i))
    assert first._rt.core.first_index > 1  # compacted
    late = await join(
        await make_node(transport=small_frames), consensus=consensus, machine=Kv(padding)
    )
    await late.when.committed().reaches(first.committed)
    assert late.state_machine.data == first.state_machine.data
    assert late._rt.stats.snapshots_installed == 1
    done = await late.execute(Put("after", 1))
    await first.when.committed().reaches(done.index)
    assert first.state_machine.data["after"] == 1


async def test_the_longest_log_wins_the_election(make_node: MakeNode, tmp_path: Path) -> None:
    dirs = [tmp_path / f"n{i}" for i in range(3)]
    nets = [await make_node(secret_key=key(i + 1), data_dir=dirs[i]) for i in range(3)]
    groups = [await join(net, bootstrap_expect=3) for net in nets]
    leader = await converged(groups, voters=3)
    behind = next(i for i, g in enumerate(groups) if g is not leader)
    shared = await leader.execute(Put("shared", 1))
    await groups[behind].when.committed().reaches(shared.index)
    await nets[behind].close()
    ahead = next(g for i, g in enumerate(groups) if i != behind and g is not leader)
    for i in range(20):
        await leader.execute(Put(f"more{i}", i))
    await ahead.when.committed().reaches(leader.committed)
    last = leader.committed
    await nets[groups.index(leader)].close()
    restarted = await join(
        await make_node(secret_key=key(behind + 1), data_dir=dirs[behind]), bootstrap_expect=3
    )
    assert restarted.state_machine.data == {"shared": 1}  # its own log, replayed
    await wait_until(lambda: ahead.is_leader and restarted.leader == ahead.leader, 15, "new leader")
    assert restarted.role is Role.FOLLOWER
    await restarted.when.committed().reaches(last)
    assert restarted.state_machine.data == ahead.state_machine.data
    assert await restarted.query(Get("more19"), consistency="strong") == 19


async def test_restart_with_data_dir_keeps_log_and_state(
    make_node: MakeNode, tmp_path: Path
) -> None:
    consensus = msgspec.structs.replace(FAST, snapshot_every=25)
    data = tmp_path / "node"
    net = await make_node(secret_key=key(7), data_dir=data)
    group = await join(net, consensus=consensus)
    await group.when.is_leader()
    for i in range(60):
        await group.execute(Put(f"k{i}", i))
    before = dict(group.state_machine.data)
    history = list(group.state_machine.history)
    await net.close()
    assert (data / "groups" / f"{group.id.hex()}.sqlite").exists()
    again = await join(await make_node(secret_key=key(7), data_dir=data), consensus=consensus)
    await again.when.is_leader()
    await again.when.committed().reaches(history[-1])
    assert again.state_machine.data == before
    assert again.state_machine.history == history  # snapshot at 50, then 10 entries replayed
    assert again._rt.storage.first_index() > 1
    assert (await again.execute(Put("new", 1))).index > history[-1]
    assert leader_of([again]) is again


def metric(exposition: str, name: str, **labels: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample of {name} {labels}")


async def test_metrics_report_raft_state_and_fsync_latency(
    make_node: MakeNode, tmp_path: Path
) -> None:
    net = await make_node(data_dir=tmp_path / "node")
    group = await join(net)
    await group.when.is_leader()
    for i in range(10):
        await group.execute(Put(f"k{i}", i))
    text = net.metrics.exposition().decode()
    gid = group.id.short()
    assert metric(text, "mosaik_groups_active") == 1
    assert metric(text, "mosaik_groups_term", group=gid) == group.term
    assert metric(text, "mosaik_groups_is_leader", group=gid) == 1
    assert metric(text, "mosaik_groups_role", group=gid, role="leader") == 1
    assert metric(text, "mosaik_groups_commit_index", group=gid) == group.committed
    assert metric(text, "mosaik_groups_applied_index", group=gid) == group.applied
    assert metric(text, "mosaik_groups_voters", group=gid) == 1
    assert metric(text, "mosaik_groups_elections_total", group=gid) == 1
    assert metric(text, "mosaik_groups_leader_changes_total", group=gid) >= 1
    assert metric(text, "mosaik_groups_commits_total", group=gid) == 10
    assert metric(text, "mosaik_groups_proposals_total", group=gid) == 10
    assert metric(text, "mosaik_groups_fsyncs_total", group=gid) >= 10
    assert 0 < metric(text, "mosaik_groups_fsync_p50_seconds", group=gid) < 1
    status = net.groups.status()[0]
    assert status["role"] == "leader" and status["applied_index"] == group.applied
    assert net.status()["groups"] == [status]
