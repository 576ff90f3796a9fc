"""Collections on real nodes over loopback: every type end to end, catch-up of late readers
and writers, several writers, read-your-writes, snapshot sync of 100k items with writes during
the sync, restart from the data directory, readers never lead and go offline once every
writer has left, tickets."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from node.collections import Collections, GroupOptions, Version
from node.groups import Role
from node.primitives import Digest
from node.tickets import JwtTicketBuilder, JwtTicketValidator
from node.transport import TransportConfig
from tests.conftest import deadline
from tests.groups.live import FAST, key, make_node

from .live import COMPACTING, FAST_GROUP, Node, node

__all__ = ["make_node", "node"]


def syncs(collections: Collections, kind: str, store: str) -> float:
    """Snapshots installed into the replica of ``store`` (the collections metric)."""
    metrics = collections._net.metrics
    labels = {"network": metrics.network, "kind": kind, "store": Digest.from_name(store).short()}
    return metrics.registry.get_sample_value("mosaik_collections_syncs_total", labels) or 0.0


class Msg(msgspec.Struct, frozen=True):
    author: str
    text: str


async def test_every_type_replicates_to_a_reader(node: Node) -> None:
    _, a = await node()
    _, b = await node()
    m = a.map("m", key=str, value=int, group=FAST_GROUP)
    v = a.vec("v", item=Msg, group=FAST_GROUP)
    s = a.set("s", item=str, group=FAST_GROUP)
    c = a.cell("c", value=str, group=FAST_GROUP)
    o = a.once("o", value=int, group=FAST_GROUP)
    q = a.priority_queue("q", priority=int, key=str, value=str, capacity=2, group=FAST_GROUP)
    await m.insert("a", 1)
    await m.compare_exchange("a", 1, 2)
    await v.extend([Msg("x", "hi"), Msg("y", "yo")])
    await v.swap(0, 1)
    await s.extend(["p", "q"])
    await s.remove("p")
    await c.write("cfg")
    await o.write(1)
    await o.write(2)
    await q.extend([(3, "c", ""), (1, "a", ""), (2, "b", "")])
    await q.update_value("b", "B")

    rm = b.map_reader("m", key=str, value=int, group=FAST_GROUP)
    rv = b.vec_reader("v", item=Msg, group=FAST_GROUP)
    rs = b.set_reader("s", item=str, group=FAST_GROUP)
    rc = b.cell_reader("c", value=str, group=FAST_GROUP)
    ro = b.once_reader("o", value=int, group=FAST_GROUP)
    rq = b.priority_queue_reader(
        "q", priority=int, key=str, value=str, capacity=2, group=FAST_GROUP
    )
    async with asyncio.timeout(deadline(15)):
        for writer, reader in [(m, rm), (v, rv), (s, rs), (c, rc), (o, ro), (q, rq)]:
            await reader.when.reaches(writer.version)
    assert rm.items() == [("a", 2)]
    assert rv.to_list() == [Msg("y", "yo"), Msg("x", "hi")]
    assert list(rs) == ["q"]
    assert rc.read() == "cfg"
    assert ro.read() == 1
    assert list(rq.iter_desc()) == [(3, "c", ""), (2, "b", "B")]


async def test_late_readers_catch_up_and_follow(node: Node) -> None:
    _, a = await node()
    writer = a.map("scores", key=str, value=int, group=COMPACTING)
    for i in range(30):  # beyond snapshot_every: late readers get a snapshot, then the log
        await writer.insert(f"p{i}", i)
    readers = []
    nodes = []
    for _ in range(2):
        _, b = await node()
        nodes.append(b)
        readers.append(b.map_reader("scores", key=str, value=int, group=COMPACTING))
    last = await writer.insert("late", 99)
    async with asyncio.timeout(deadline(15)):
        for reader in readers:
            await reader.when.reaches(last)
    for reader, b in zip(readers, nodes, strict=True):
        assert reader.items() == writer.items()
        assert reader._machine.snapshot() == writer._machine.snapshot()
        assert syncs(b, "map", "scores") == 1


async def test_several_writers_converge_and_read_their_writes(node: Node) -> None:
    three = GroupOptions(consensus=FAST, bootstrap_expect=3)
    nodes = [await node() for _ in range(3)]
    writers = [c.vec("events", item=str, group=three) for _, c in nodes]
    async with asyncio.timeout(deadline(20)):
        await asyncio.gather(*(w.when.online() for w in writers))

    async def write(n: int, w) -> list[Version]:
        return [await w.push_back(f"w{n}-{i}") for i in range(10)]

    versions = await asyncio.gather(*(write(n, w) for n, w in enumerate(writers)))
    top = max(v for vs in versions for v in vs)
    async with asyncio.timeout(deadline(10)):
        for w in writers:
            await w.when.reaches(top)
    lists = [w.to_list() for w in writers]
    assert lists[0] == lists[1] == lists[2] and len(lists[0]) == 30
    for n, vs in enumerate(versions):  # each writer's own items are in its order
        mine = [x for x in lists[0] if x.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}" for i in range(10)]
        assert vs == sorted(vs)
    # read-your-writes across nodes: a version from one writer, awaited on another
    version = await writers[0].push_back("last")
    await writers[2].when.reaches(version)
    assert writers[2].back() == "last"


async def test_late_writer_catches_up_and_writes(node: Node) -> None:
    _, a = await node()
    first = a.set("members", item=str, group=COMPACTING)
    await first.extend([f"m{i}" for i in range(20)])
    for i in range(12):
        await first.remove(f"m{i}")
    _, b = await node()
    late = b.set("members", item=str, group=COMPACTING)
    async with asyncio.timeout(deadline(15)):
        await late.when.reaches(first.version)
        version = await late.insert("from-late")
        await first.when.reaches(version)
    assert list(late) == list(first) == [f"m{i}" for i in range(12, 20)] + ["from-late"]


async def test_snapshot_sync_of_100k_items_with_writes_during_the_sync(node: Node) -> None:
    options = GroupOptions(consensus=msgspec.structs.replace(FAST, snapshot_every=4))
    # The 1.3 MiB snapshot goes out in fragments of at most 512 KiB: a single frame larger
    # than the transport's 1 MiB stream window stalls (reported; the default max_frame is 4 MiB).
    small_frames = TransportConfig(max_frame=512 * 1024)
    _, a = await node(transport=small_frames)
    writer = a.map("big", key=str, value=int, group=options)
    for start in range(0, 100_000, 10_000):
        await writer.extend((f"k{i}", i) for i in range(start, start + 10_000))
    _, b = await node(transport=small_frames)
    reader = b.map_reader("big", key=str, value=int, group=options)

    async def keep_writing() -> Version:
        version = writer.version
        for i in range(40):
            version = await writer.insert(f"during{i}", i)
        return version

    last = await keep_writing()
    async with asyncio.timeout(deadline(30)):
        await reader.when.reaches(last)
    assert len(reader) == 100_040
    assert reader.get("k99999") == 99_999 and reader.get("during39") == 39
    assert reader._machine.snapshot() == writer._machine.snapshot()
    assert syncs(b, "map", "big") >= 1


async def test_restarted_writer_keeps_the_collection(node: Node, tmp_path) -> None:
    data = tmp_path / "writer"
    net, c = await node(secret_key=key(11), data_dir=data)
    queue = c.priority_queue("jobs", priority=int, key=str, value=str, group=COMPACTING)
    for i in range(20):
        await queue.insert(i % 5, f"job{i}", "payload")
    await queue.remove_range(None, 2)
    before = list(queue.iter_asc())
    version = queue.version
    await c.close()
    await net.close()
    _, again = await node(secret_key=key(11), data_dir=data)
    queue = again.priority_queue("jobs", priority=int, key=str, value=str, group=COMPACTING)
    async with asyncio.timeout(deadline(15)):
        await queue.when.reaches(version)
        await queue.when.online()
    assert list(queue.iter_asc()) == before
    assert await queue.insert(9, "new", "x") > version


async def test_readers_never_lead_and_alone_never_come_online(node: Node) -> None:
    _, a = await node()
    _, b = await node()
    _, c = await node()
    writer = a.cell("leader-test", value=int, group=FAST_GROUP)
    readers = [n.cell_reader("leader-test", value=int, group=FAST_GROUP) for n in (b, c)]
    version = await writer.write(1)
    for reader in readers:
        await reader.when.reaches(version)
    await writer.close()  # the only voter leaves
    await asyncio.sleep(5 * FAST.election_timeout)  # time enough to campaign, were they able
    for reader in readers:
        group = await reader._replica.group()
        assert group.role is Role.FOLLOWER and not group.is_leader
        assert reader.read() == 1  # reads of the last replicated state still work

    _, d = await node()
    only = d.vec_reader("readers-only", item=int, group=FAST_GROUP)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(5 * FAST.election_timeout):
            await only.when.online()


async def test_ticket_gated_collection(node: Node) -> None:
    secret = b"collections-test-secret-0123456789"
    validator = JwtTicketValidator({"HS256": secret})
    nets = [await node() for _ in range(3)]
    for net, _ in nets[:2]:
        net.discovery.add_ticket(
            JwtTicketBuilder(secret, "HS256").expires_in(600).mint(net.peer_id)
        )
    writer = nets[0][1].map("vault", key=str, value=int, require_ticket=validator, group=FAST_GROUP)
    await writer.insert("gold", 1)
    member = nets[1][1].map_reader(
        "vault", key=str, value=int, require_ticket=validator, group=FAST_GROUP
    )
    outsider = nets[2][1].map_reader(
        "vault", key=str, value=int, require_ticket=validator, group=FAST_GROUP
    )
    async with asyncio.timeout(deadline(15)):
        await member.when.reaches(writer.version)
    assert member.get("gold") == 1
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(5 * FAST.election_timeout):
            await outsider.when.reaches(writer.version)
    assert outsider.get("gold") is None


async def test_readers_go_offline_once_every_writer_has_left(node: Node) -> None:
    two = GroupOptions(consensus=FAST, bootstrap_expect=2)
    nodes = [await node() for _ in range(3)]
    writers = [c.map("roster", key=str, value=int, group=two) for _, c in nodes[:2]]
    reader = nodes[2][1].map_reader("roster", key=str, value=int, group=two)
    async with asyncio.timeout(deadline(20)):
        await asyncio.gather(*(w.when.online() for w in writers))
        version = await writers[0].insert("alice", 1)
        await reader.when.reaches(version)
        await reader.when.online()
    for writer in writers:
        await writer.close()
    async with asyncio.timeout(deadline(10 * FAST.election_timeout)):
        await reader.when.offline()
    assert reader.get("alice") == 1  # the last replicated state stays readable
