"""The counter demo: three nodes increment, the leader leaves, nothing acknowledged is lost."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from node.cli import main, node_cmds
from node.demo.counter import CounterDemo, Value
from tests.conftest import wait_until
from tests.groups.live import FAST, MakeNode


async def test_counter_demo_keeps_every_acknowledged_increment(make_node: MakeNode) -> None:
    nets = [await make_node() for _ in range(3)]
    demos = [await CounterDemo.join(net, consensus=FAST) for net in nets]
    async with asyncio.TaskGroup() as tasks:
        increments = [tasks.create_task(d.increment(0.01)) for d in demos]
        await wait_until(lambda: sum(d.acknowledged for d in demos) >= 20, 15, "increments")
        leader = next(d for d in demos if d.group.is_leader)
        survivors = [d for d in demos if d is not leader]
        increments[demos.index(leader)].cancel()
        await leader.close()
        await nets[demos.index(leader)].close()
        acknowledged = sum(d.acknowledged for d in demos)  # every increment acknowledged so far
        await wait_until(lambda: any(d.group.is_leader for d in survivors), 10, "a new leader")
        before = survivors[0].acknowledged
        await wait_until(lambda: survivors[0].acknowledged >= before + 5, 15, "increments resume")
        value = await survivors[0].group.query(Value(), consistency="strong")
        assert value >= acknowledged
        status = survivors[0].status()
        new_leader = next(d for d in survivors if d.group.is_leader).group.leader
        assert status["leader"] == new_leader.hex()
        assert status["acknowledged"] == survivors[0].acknowledged
        for increment in increments:
            increment.cancel()
    for demo in survivors:
        await demo.close()


async def test_node_inspect_lists_groups(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = await make_node()
    demo = await CounterDemo.join(net, bootstrap_expect=1, consensus=FAST)
    async with asyncio.TaskGroup() as tasks:
        increments = tasks.create_task(demo.increment(0.01))
        await wait_until(lambda: demo.acknowledged >= 3, 15, "increments")
        increments.cancel()
    status = net.status()
    monkeypatch.setattr(node_cmds, "fetch_status", lambda _addr: status)
    shown = CliRunner().invoke(main, ["node", "inspect", "127.0.0.1:9"])
    assert shown.exit_code == 0, shown.output
    (group,) = status["groups"]
    assert f"{group['group_id'][:16]}  leader" in shown.output
    assert f"leader {net.peer_id.hex()[:16]}" in shown.output
    assert f"applied {group['applied_index']}" in shown.output and "voters 1" in shown.output
    await demo.close()
