"""Collection handles over a FAKE group (tests/collections/fake_group.py): the API surface,
versions, ``when``, sharing of replicas, errors, metrics. Real groups are tested elsewhere."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from node.collections import (
    CollectionClosed,
    Collections,
    GroupOptions,
    InvalidValue,
    StoreConflict,
    Version,
)
from node.groups import ConsensusConfig
from node.groups.errors import Offline
from node.primitives import Digest

from ..conftest import deadline
from .fake_group import FakeNet


class Order(msgspec.Struct, frozen=True):
    side: str
    qty: int


async def test_map_writer_and_reader_on_two_nodes(fake_nodes, fake_groups) -> None:
    a, b = fake_nodes(), fake_nodes()
    writer = a.map("balances", key=str, value=int)
    await writer.when.online()
    v1 = await writer.insert("alice", 100)
    v2 = await writer.extend([("bob", 5), ("carol", 7)])
    assert v2 > v1 and writer.version == v2
    v3 = await writer.compare_exchange("bob", 5, 6)
    await writer.compare_exchange("bob", 5, 99)  # fails: value is 6 now
    await writer.remove("missing")
    last = await writer.remove_many(["carol"])
    assert writer.items() == [("alice", 100), ("bob", 6)]

    reader = b.map_reader("balances", key=str, value=int)
    await reader.when.reaches(last)
    assert reader.get("bob") == 6 and reader.get("nobody") is None
    assert reader.contains_key("alice") and "carol" not in reader
    assert list(reader) == ["alice", "bob"] and reader.keys() == ["alice", "bob"]
    assert reader.values() == [100, 6] and list(reader.iter()) == reader.items()
    assert len(reader) == 2 and reader.to_dict() == {"alice": 100, "bob": 6}
    assert reader.version >= v3
    assert not hasattr(reader, "insert")
    joined = fake_groups.member(reader._machine)
    assert not joined.voter  # readers join as observers

    await writer.clear()
    await writer.insert("dave", 1)  # rebuild after clear
    await reader.when.reaches(writer.version)
    assert reader.items() == [("dave", 1)]


OPENERS = {
    "map": {"key": str, "value": int},
    "vec": {"item": int},
    "set": {"item": int},
    "cell": {"value": int},
    "once": {"value": int},
    "priority_queue": {"priority": int, "key": str, "value": int},
}


@pytest.mark.parametrize("kind", sorted(OPENERS))
async def test_each_kind_opens_a_writer_or_a_reader(kind, fake_nodes, fake_groups) -> None:
    a, b = fake_nodes(), fake_nodes()
    params = OPENERS[kind]
    writer = getattr(a, kind)(kind, **params)
    reader = getattr(b, f"{kind}_reader")(kind, **params)
    assert type(writer).__name__.endswith("Writer") and type(reader).__name__.endswith("Reader")
    assert isinstance(writer, type(reader)) and not isinstance(reader, type(writer))
    assert type(writer).__module__ == type(writer._machine).__module__  # one module per kind
    await asyncio.gather(writer._replica.group(), reader._replica.group())  # joined
    assert fake_groups.member(writer._machine).voter
    assert not fake_groups.member(reader._machine).voter
    with pytest.raises(TypeError):
        getattr(a, kind)(f"{kind}-2", reader=True, **params)  # readers have their own opener


async def test_vec_surface(fake_nodes) -> None:
    vec = fake_nodes().vec("log", item=str)
    await vec.push_back("b")
    await vec.push_front("a")
    await vec.extend(["c", "d"])
    await vec.insert(1, "x")
    await vec.swap(0, 4)
    await vec.remove(1)
    await vec.pop_front()
    await vec.pop_back()
    assert vec.to_list() == ["b", "c"]
    before = vec.version
    moved = await vec.insert(99, "nowhere")  # out of bounds: no-op, version advances
    assert moved > before and vec.to_list() == ["b", "c"]
    assert vec.front() == "b" and vec.back() == "c" and vec.get(1) == "c" and vec.get(2) is None
    assert vec.contains("c") and "z" not in vec and vec.index_of("c") == 1
    assert vec.index_of("z") is None
    await vec.truncate(1)
    assert list(vec) == ["b"] and list(vec.iter()) == ["b"]
    await vec.clear()
    assert vec.is_empty() and vec.front() is None and vec.back() is None


async def test_set_surface(fake_nodes) -> None:
    node = fake_nodes()
    peers = node.set("peers", item=str)
    allowed = node.set("allowed", item=str)
    await peers.insert("n1")
    await peers.extend(["n2", "n3", "n1"])
    await peers.remove("n3")
    await peers.remove_many(["n9", "n2"])
    await allowed.extend(["n1", "n2"])
    assert list(peers) == ["n1"] and peers.contains("n1") and "n2" not in peers
    assert peers.is_subset(allowed) and not allowed.is_subset(peers)
    assert peers.is_subset(["n1", "n5"]) and peers.to_set() == {"n1"}
    await peers.clear()
    assert len(peers) == 0 and list(peers.iter()) == []


async def test_cell_surface(fake_nodes) -> None:
    cell = fake_nodes().cell("config", value=str)
    assert cell.read() is None and cell.is_none()
    await cell.compare_exchange(None, "v1")
    await cell.compare_exchange("stale", "v2")
    assert cell.read() == "v1"
    await cell.write("v3")
    assert cell.read() == "v3" and cell.is_some()
    await cell.compare_exchange("v3", None)
    assert cell.is_none()
    await cell.write("v4")
    await cell.clear()
    assert cell.read() is None


async def test_once_keeps_the_first_write_and_await_value(fake_nodes) -> None:
    a, b = fake_nodes(), fake_nodes()
    writer = a.once("genesis", value=Order)
    watcher = b.once_reader("genesis", value=Order)
    waiting = asyncio.create_task(watcher.await_value())
    await writer.when.online()
    await writer.write(Order("buy", 1))
    second = await writer.write(Order("sell", 2))
    async with asyncio.timeout(deadline(2)):
        assert await waiting == Order("buy", 1)
    await watcher.when.reaches(second)
    assert watcher.read() == Order("buy", 1) and watcher.is_some()
    assert await watcher.await_value() == Order("buy", 1)  # at once when set


async def test_priority_queue_surface(fake_nodes) -> None:
    book = fake_nodes().priority_queue("bids", priority=int, key=str, value=Order, capacity=4)
    await book.insert(10, "o1", Order("buy", 1))
    await book.extend([(12, "o2", Order("buy", 2)), (10, "o3", Order("buy", 3))])
    assert book.get_min() == (10, "o1", Order("buy", 1))
    assert book.get_max() == (12, "o2", Order("buy", 2))
    assert book.min_priority() == 10 and book.max_priority() == 12
    await book.update_priority("o1", 11)
    await book.update_value("o3", Order("buy", 30))
    await book.compare_exchange_value("o2", Order("buy", 2), Order("buy", 20))
    await book.compare_exchange_value("o2", Order("buy", 2), None)  # stale: no-op
    assert [k for _, k, _ in book.iter_asc()] == ["o3", "o1", "o2"]
    assert [k for _, k, _ in book.iter_desc()] == ["o2", "o1", "o3"]
    assert list(book) == list(book.iter()) == list(book.iter_asc())
    assert book.get("o2") == Order("buy", 20) and book.get_priority("o1") == 11
    assert book.get("none") is None and book.get_priority("none") is None
    assert book.contains_key("o3") and "o9" not in book
    await book.extend([(13, "o4", Order("buy", 4)), (9, "o5", Order("buy", 5))])
    assert len(book) == 4 and "o5" not in book  # capacity 4: the lowest newcomer is evicted
    await book.remove("o4")
    await book.remove_keys(["o3", "zz"])
    await book.remove_range(11, 12, end_inclusive=True)
    assert book.is_empty()
    await book.insert(1, "x", Order("buy", 1))
    await book.remove_range()
    assert book.get_min() is None and book.min_priority() is None and book.max_priority() is None
    await book.insert(1, "y", Order("buy", 1))
    await book.clear()
    assert len(book) == 0


async def test_empty_batches_propose_nothing(fake_nodes, fake_groups) -> None:
    node = fake_nodes()
    m = node.map("m", key=str, value=int)
    v = await m.insert("a", 1)
    log = fake_groups.member(m._machine).log
    assert await m.extend([]) == v
    assert await m.remove_many([]) == v
    assert await node.vec("v", item=int).extend([]) == Version(0)
    assert await node.set("s", item=int).remove_many([]) == Version(0)
    pq = node.priority_queue("q", priority=int, key=str, value=str)
    assert await pq.extend([]) == await pq.remove_keys([]) == Version(0)
    assert len(log.entries) == 1


async def test_reaches_and_updated_wait_for_the_local_replica(fake_nodes, fake_groups) -> None:
    a, b = fake_nodes(), fake_nodes()
    writer = a.map("m", key=str, value=int)
    reader = b.map_reader("m", key=str, value=int)
    await reader.when.online()
    member = fake_groups.member(reader._machine)
    member.hold()
    version = await writer.insert("k", 1)
    reached = asyncio.create_task(reader.when.reaches(version))
    updated = asyncio.create_task(reader.when.updated())
    await asyncio.sleep(0)  # one turn: both start waiting
    # The reader's replica holds the insert back: it has not applied the writer's entry.
    assert member.applied < len(member.log.entries)
    assert not reached.done() and not updated.done() and reader.get("k") is None
    member.release()
    async with asyncio.timeout(deadline(2)):
        await reached
        await updated
    assert reader.get("k") == 1
    await reader.when.reaches(Version(0))  # already there: returns at once


async def test_handles_of_one_store_share_one_replica(fake_nodes, fake_groups) -> None:
    node = fake_nodes()
    writer = node.map("shared", key=str, value=int)
    reader = node.map_reader("shared", key=str, value=int)
    await writer.insert("a", 1)
    assert reader.get("a") == 1
    await writer.when.online()
    assert len(fake_groups.joined) == 1  # one member per node
    other_types = node.map("shared", key=str, value=str)  # another signature: another group
    await other_types.when.online()
    assert len(fake_groups.joined) == 2

    late = fake_nodes()
    late.map_reader("solo", key=str, value=int)
    with pytest.raises(StoreConflict, match="reader"):
        late.map("solo", key=str, value=int)


async def test_invalid_values_are_refused_before_sending(fake_nodes, fake_groups) -> None:
    m = fake_nodes().map("typed", key=str, value=Order)
    await m.insert("ok", Order("buy", 1))
    with pytest.raises(InvalidValue, match="Order"):
        await m.insert("bad", "not an order")  # type: ignore[arg-type]
    with pytest.raises(InvalidValue):
        await m.insert(3, Order("buy", 1))  # type: ignore[arg-type]
    assert len(fake_groups.member(m._machine).log.entries) == 1


async def test_tickets_pass_to_the_group_and_must_agree(fake_nodes, fake_groups) -> None:
    class Validator:
        def __init__(self, name: str) -> None:
            self.name = name

        class_id = Digest.from_name("fake-ticket-class")

        def signature(self) -> Digest:
            return Digest.from_name(self.name)

        def validate(self, data, peer, now):  # pragma: no cover - never called by the fake
            raise AssertionError

    node = fake_nodes()
    gated = node.cell("gated", value=int, require_ticket=Validator("a"))
    await gated.when.online()
    (member,) = fake_groups.joined
    assert [v.signature() for v in member.options["require_ticket"]] == [Digest.from_name("a")]
    node.cell_reader("gated", value=int, require_ticket=[Validator("a")])
    with pytest.raises(StoreConflict, match="ticket"):
        node.cell("gated", value=int, require_ticket=Validator("b"))
    with pytest.raises(StoreConflict, match="ticket"):
        node.cell("gated", value=int)


async def test_a_group_of_only_readers_stays_offline(fake_nodes) -> None:
    reader = fake_nodes().vec_reader("quiet", item=int)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await reader.when.online()


async def test_offline_and_join_errors_reach_the_writer(fake_nodes, fake_groups) -> None:
    a, b = fake_nodes(), fake_nodes()
    writer = a.vec("v", item=int)
    reader = b.vec_reader("v", item=int)
    await writer.push_back(1)
    await writer.close()
    async with asyncio.timeout(deadline(2)):
        await reader.when.offline()

    fake_groups.fail_with = Offline("no route")
    broken = fake_nodes().vec("broken", item=int)
    with pytest.raises(Offline, match="no route"):
        await broken.push_back(1)
    with pytest.raises(Offline):
        await broken.when.online()


async def test_close_releases_and_later_use_fails(fake_nodes, fake_groups) -> None:
    node: Collections = fake_nodes()
    writer = node.map("m", key=str, value=int)
    reader = node.map_reader("m", key=str, value=int)
    await writer.insert("a", 1)
    (member,) = fake_groups.joined
    await reader.close()
    await reader.close()  # idempotent
    assert not member.closed  # the writer still holds the replica
    waiting = asyncio.create_task(writer.when.reaches(Version(99)))
    await asyncio.sleep(0)
    await writer.close()
    assert member.closed
    with pytest.raises(CollectionClosed):
        await waiting
    with pytest.raises(CollectionClosed):
        await writer.insert("b", 2)
    assert writer.get("a") == 1  # reads of the last local state still work
    reopened = node.map("m", key=str, value=int)  # a fresh replica, synced again
    await reopened.when.online()
    assert reopened.get("a") == 1

    await node.close()
    with pytest.raises(CollectionClosed):
        await reopened.insert("c", 3)
    with pytest.raises(CollectionClosed):
        node.map("m", key=str, value=int)


async def test_metrics_report_size_and_syncs(fake_nodes) -> None:
    a, b = fake_nodes(), fake_nodes()
    writer = a.set("tags", item=str)
    await writer.extend(["x", "y", "z"])
    reader = b.set_reader("tags", item=str)  # joins late: installs a snapshot
    await reader.when.online()
    store = Digest.from_name("tags").short()
    text = b._net.metrics.exposition().decode()
    labels = f'{{kind="set",network="{b._net.metrics.network}",store="{store}"}}'
    assert f"mosaik_collections_size{labels} 3.0" in text
    assert f"mosaik_collections_syncs_total{labels} 1.0" in text
    assert b.statistics() == [
        {"kind": "set", "store": Digest.from_name("tags").hex(), "role": "reader", "size": 3,
         "version": 1, "handles": 1}
    ]  # fmt: skip
    await reader.close()
    assert "mosaik_collections_size{" not in b._net.metrics.exposition().decode()


async def test_group_options_pass_to_the_join_and_must_agree(fake_groups) -> None:
    consensus = ConsensusConfig(heartbeat_interval=0.05)
    default = GroupOptions(consensus=consensus, bootstrap_expect=3)
    node = Collections(FakeNet(fake_groups), group=default)
    try:
        m = node.map("opts", key=str, value=int)
        m2 = node.map("opts2", key=str, value=int, group=GroupOptions(max_voters=3))
        await m.when.online()
        await m2.when.online()
        first, second = fake_groups.joined
        assert first.options == {
            "bootstrap_expect": 3,
            "max_voters": 5,
            "consensus": consensus,
            "require_ticket": None,
        }
        assert second.options["max_voters"] == 3 and second.options["consensus"] is None
        with pytest.raises(StoreConflict, match="group options"):
            node.map_reader("opts", key=str, value=int, group=GroupOptions())
    finally:
        await node.close()
