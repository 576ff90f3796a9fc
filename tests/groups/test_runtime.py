"""Group runtime on real nodes over loopback: elections, joins, failover, commands, queries."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from node.groups import (
    Encoding,
    Group,
    GroupTerminated,
    LeadershipPreference,
    Offline,
    Role,
)
from node.network import Network
from node.transport import FaultShim
from tests.conftest import deadline, wait_until
from tests.groups.live import (
    FAST,
    Get,
    MakeNode,
    Put,
    cluster,
    converged,
    join,
    leader_of,
    peer_of,
)


async def test_leader_elected_and_commands_replicated(make_node: MakeNode) -> None:
    groups = await cluster(make_node, 3)
    leader = leader_of(groups)
    done = await leader.execute(Put("a", 1))
    assert done.result == 1
    for group in groups:
        await group.when.committed().reaches(done.index)
        assert group.state_machine.data == {"a": 1}
    assert {g.term for g in groups} == {leader.term}
    assert sum(g.is_leader for g in groups) == 1


async def test_late_joiners_adopt_the_leader(make_node: MakeNode) -> None:
    first = await join(await make_node(), bootstrap_expect=1)
    await first.when.is_leader()
    await first.execute(Put("early", 1))
    late = [await join(await make_node()) for _ in range(2)]
    leader = await converged([first, *late], voters=3)
    assert leader is first
    for group in late:
        await group.when.committed().reaches(first.committed)
        assert group.state_machine.data == {"early": 1}
        assert group.leader == first.leader


async def test_leader_loss_elects_exactly_one_new_leader(make_node: MakeNode) -> None:
    nets = [await make_node() for _ in range(3)]
    groups = [await join(net, bootstrap_expect=3) for net in nets]
    old = await converged(groups, voters=3)
    await old.execute(Put("before", 1))
    old_term = old.term
    survivors = [g for g in groups if g is not old]
    await nets[groups.index(old)].close()

    def one_new_leader() -> bool:
        leaders = [g for g in survivors if g.role is Role.LEADER]
        return len(leaders) == 1 and all(g.leader == leaders[0].leader for g in survivors)

    await wait_until(one_new_leader, 10, "a new leader among the survivors")
    new = leader_of(survivors)
    assert new.term > old_term
    follower = next(g for g in survivors if g is not new)
    done = await follower.execute(Put("after", 2))
    await new.when.committed().reaches(done.index)
    for group in survivors:
        assert await group.query(Get("before"), consistency="strong") == 1
        assert await group.query(Get("after"), consistency="strong") == 2


async def test_execute_and_query_agree_from_leader_and_followers(make_node: MakeNode) -> None:
    groups = await cluster(make_node, 3)
    for n, group in enumerate(groups):
        await group.execute(Put(f"k{n}", n))
    batch = await groups[1].execute_many(Put("batch", i) for i in range(10))
    assert [b.index for b in batch] == list(range(batch[0].index, batch[0].index + 10))
    for group in groups:
        # strong: linearizable, so every write above is visible on every member at once
        assert await group.query(Get("batch"), consistency="strong") == 9
        assert [await group.query(Get(f"k{n}"), consistency="strong") for n in range(3)] == [
            0,
            1,
            2,
        ]
    last = batch[-1].index
    for group in groups:
        await group.when.committed().reaches(last)
        assert await group.query(Get("batch")) == 9  # weak: local, now caught up
    histories = {tuple(g.state_machine.history) for g in groups}
    assert len(histories) == 1


async def test_feed_assigns_increasing_indices(make_node: MakeNode) -> None:
    groups = await cluster(make_node, 3)
    follower = next(g for g in groups if not g.is_leader)
    indices = [await follower.feed(Put("f", i)) for i in range(5)]
    assert indices == sorted(indices) and len(set(indices)) == 5
    first = await groups[0].feed_many(Put("g", i) for i in range(3))
    assert first > indices[-1]
    for group in groups:
        await group.when.committed().reaches(first + 2)
        assert group.state_machine.data["f"] == 4 and group.state_machine.data["g"] == 2


async def test_bootstrap_expect_waits_for_enough_members(make_node: MakeNode) -> None:
    nets = [await make_node() for _ in range(2)]
    groups = [await join(net, bootstrap_expect=3) for net in nets]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(deadline(10 * FAST.election_timeout)):
            await asyncio.gather(*(g.when.leader_elected() for g in groups))
    assert all(g.leader is None and g.log_position.index == 0 for g in groups)
    groups.append(await join(await make_node(), bootstrap_expect=3))
    await converged(groups, voters=3)


async def test_handles_share_the_group_and_close_independently(make_node: MakeNode) -> None:
    net = await make_node()
    first = await join(net)
    second = await join(net)
    await first.when.is_leader()
    await second.execute(Put("x", 1))
    assert first.state_machine is second.state_machine
    await first.close()
    assert (await second.execute(Put("y", 2))).result == 2
    with pytest.raises(GroupTerminated) as info:
        await first.execute(Put("z", 3))
    assert info.value.commands == (Put("z", 3),)
    assert net.peer_id and len(net.groups) == 1
    assert group_advertised(net, second)
    await second.close()
    assert len(net.groups) == 0
    assert not group_advertised(net, second)


def group_advertised(net: Network, group: Group) -> bool:
    return group.id in net.discovery.local_entry.entry.groups


async def test_a_command_of_the_wrong_type_is_an_encoding_error(make_node: MakeNode) -> None:
    group = await join(await make_node())
    await group.when.is_leader()
    with pytest.raises(Encoding) as info:
        await group.execute_many([Put("ok", 1), Get("not a command")])
    assert info.value.commands == (Put("ok", 1), Get("not a command"))
    assert group.state_machine.data == {}


async def test_silent_member_is_removed_once_and_readded_when_heard(
    make_node: MakeNode,
) -> None:
    shim = FaultShim()
    nets = [await make_node(faults=shim) for _ in range(3)]
    groups = [await join(net, bootstrap_expect=3) for net in nets]
    leader = await converged(groups, voters=3)
    silent = next(n for n, g in enumerate(groups) if g is not leader)
    others = [net.local_addr for n, net in enumerate(nets) if n != silent]
    shim.partition([nets[silent].local_addr], others)
    gone = peer_of(groups[silent])
    await wait_until(lambda: gone not in leader.members, 10, "the silent member is removed")
    changes = leader._rt.stats.conf_changes
    await leader.execute_many(Put("while-away", i) for i in range(3))
    with pytest.raises(TimeoutError):  # the leader plans every tick: give it twenty
        async with asyncio.timeout(20 * FAST.heartbeat_interval):
            await leader._rt.wait_for(lambda: gone in leader.members)
    assert leader._rt.stats.conf_changes == changes
    shim.heal()
    await converged(groups, voters=3)
    await groups[silent].when.committed().reaches(leader.committed)
    assert groups[silent].state_machine.data["while-away"] == 2


async def test_observers_stay_learners_and_never_lead(make_node: MakeNode) -> None:
    groups = await cluster(make_node, 3)
    watcher = await join(
        await make_node(), preference=LeadershipPreference.observer(), bootstrap_expect=3
    )
    await wait_until(lambda: watcher.online, 10, "the observer is added")
    assert peer_of(watcher) in groups[0].members.learners
    done = await watcher.execute(Put("from-observer", 1))  # observers may still write
    await watcher.when.committed().reaches(done.index)
    assert await watcher.query(Get("from-observer"), consistency="strong") == 1
    assert len(leader_of(groups).members.voters) == 3
    assert not watcher.is_leader


async def test_partitioned_leader_steps_down_and_rejoins(make_node: MakeNode) -> None:
    shim = FaultShim()
    nets = [await make_node(faults=shim) for _ in range(3)]
    impatient = msgspec.structs.replace(FAST, forward_timeout=0.5)
    groups = [await join(net, bootstrap_expect=3, consensus=impatient) for net in nets]
    old = await converged(groups, voters=3)
    cut = groups.index(old)
    shim.partition([nets[cut].local_addr], [n.local_addr for i, n in enumerate(nets) if i != cut])
    majority = [g for g in groups if g is not old]
    await wait_until(
        lambda: any(g.is_leader for g in majority) and not old.is_leader, 10, "a new leader"
    )
    new = leader_of(majority)
    done = await new.execute(Put("majority", 1))
    with pytest.raises(Offline) as info:
        await old.execute(Put("minority", 2))  # no leader on its side of the cut
    assert info.value.commands == (Put("minority", 2),)
    shim.heal()
    await old.when.committed().reaches(done.index)
    await converged(groups, voters=3)
    assert old.state_machine.data == {"majority": 1}


async def test_two_groups_share_the_nodes_and_connections(make_node: MakeNode) -> None:
    nets = [await make_node() for _ in range(3)]
    first = [await join(net, "one", bootstrap_expect=3) for net in nets]
    second = [await join(net, "two", bootstrap_expect=3) for net in nets]
    await converged(first, voters=3)
    await converged(second, voters=3)
    assert first[0].id != second[0].id
    await first[1].execute(Put("a", 1))
    await second[2].execute(Put("b", 2))
    for group in first:
        assert await group.query(Get("a"), consistency="strong") == 1
        assert await group.query(Get("b")) is None
    for group in second:
        assert await group.query(Get("b"), consistency="strong") == 2
    groups_connections = [c for c in nets[0].endpoint.connections() if c.alpn == "/mosaik/groups/1"]
    assert len(groups_connections) <= 4  # at most one per peer and direction, for both groups
