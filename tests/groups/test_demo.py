"""The counter demo hook: three nodes increment, the leader leaves, nothing acknowledged is lost."""

from __future__ import annotations

from node.groups.demo import CounterDemo, Value
from tests.conftest import wait_until
from tests.groups.live import FAST, MakeNode


async def test_counter_demo_keeps_every_acknowledged_increment(make_node: MakeNode) -> None:
    nets = [await make_node() for _ in range(3)]
    demos = [await CounterDemo.start(net, interval=0.01, consensus=FAST) for net in nets]
    await wait_until(lambda: sum(d.acknowledged for d in demos) >= 20, 15, "increments")
    leader = next(d for d in demos if d.group.is_leader)
    survivors = [d for d in demos if d is not leader]
    await leader.close()
    await nets[demos.index(leader)].close()
    acknowledged = sum(d.acknowledged for d in demos)  # every increment acknowledged so far
    await wait_until(lambda: any(d.group.is_leader for d in survivors), 10, "a new leader")
    before = survivors[0].acknowledged
    await wait_until(lambda: survivors[0].acknowledged >= before + 5, 15, "increments resume")
    value = await survivors[0].group.query(Value(), consistency="strong")
    assert value >= acknowledged
    status = survivors[0].status()
    assert status["leader"] == next(d for d in survivors if d.group.is_leader).group.leader.hex()
    assert status["acknowledged"] == survivors[0].acknowledged
    for demo in survivors:
        await demo.close()
