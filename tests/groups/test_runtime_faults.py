"""Group runtime under adversity: rival clusters, tickets, bad frames, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from node.groups import (
    ALPN,
    ApplyContext,
    CorruptStorage,
    Group,
    GroupStopped,
    group_id,
    group_secret,
)
from node.groups.ids import membership_proof
from node.groups.raft import (
    Entry,
    HardState,
    Membership,
    Snapshot,
    SnapshotMeta,
    SqliteStorage,
    VoteRequest,
)
from node.groups.wire import ClusterState, Hello, Refused, Welcome, reply_decoder
from node.network import Network
from node.primitives import Digest
from node.tickets import JwtTicketBuilder, JwtTicketValidator
from node.transport import codes
from node.transport.errors import ConnectionClosed
from tests.conftest import wait_until
from tests.groups.live import FAST, Kv, MakeNode, Put, converged, join, key, peer_of

SECRET = b"groups-test-hmac-secret-32-bytes"
VALIDATOR = JwtTicketValidator({"HS256": SECRET})


def sees(net: Network, other: Network, gid: Digest) -> bool:
    info = net.discovery.peer_info(other.peer_id)
    return info is not None and gid in info.groups


async def lone_leader(make_node: MakeNode) -> tuple[Network, Group]:
    """A node that knows no one and forms a cluster of its own."""
    net = await make_node(bootstrap=False)
    group = await join(net, bootstrap_expect=1)
    await group.when.is_leader()
    return net, group


async def introduce(a: Network, b: Network) -> None:
    a.discovery.feed(b.discovery.local_entry)
    b.discovery.feed(a.discovery.local_entry)


async def test_empty_rival_cluster_yields_and_joins(make_node: MakeNode) -> None:
    net_a, a = await lone_leader(make_node)
    net_b, b = await lone_leader(make_node)
    done = await a.execute(Put("kept", 1))
    assert a._rt.lineage.cluster.id != b._rt.lineage.cluster.id
    await introduce(net_a, net_b)
    await wait_until(lambda: b._rt.stats.lineages_abandoned == 1, 10, "b leaves its cluster")
    await wait_until(lambda: peer_of(b) in a.members, 10, "a adds b")
    await b.when.committed().reaches(done.index)
    assert b.state_machine.data == {"kept": 1}
    assert b._rt.lineage.cluster == a._rt.lineage.cluster
    assert a._rt.stats.rivals_detected >= 1
    assert a.is_leader and b.leader == peer_of(a)


async def test_rivals_that_both_hold_commands_are_detected_not_merged(
    make_node: MakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    net_a, a = await lone_leader(make_node)
    net_b, b = await lone_leader(make_node)
    await a.execute(Put("a", 1))
    await b.execute(Put("b", 2))
    with caplog.at_level(logging.WARNING, logger="mosaik.groups"):
        await introduce(net_a, net_b)
        await wait_until(
            lambda: bool(a._rt.lineage.rivals and b._rt.lineage.rivals), 10, "both see a rival"
        )
    assert "both hold commands" in caplog.text
    exposition = net_a.metrics.exposition().decode()
    assert "mosaik_groups_rival_clusters{" in exposition
    assert any(
        line.startswith("mosaik_groups_rival_clusters{") and line.endswith(" 1.0")
        for line in exposition.splitlines()
    )
    # Nothing was discarded and neither cluster took the other's member.
    assert a.state_machine.data == {"a": 1} and b.state_machine.data == {"b": 2}
    assert a.members.members == (peer_of(a),) and b.members.members == (peer_of(b),)
    assert (await a.execute(Put("a2", 3))).result == 2


async def test_jwt_gated_membership_and_revocation(make_node: MakeNode) -> None:
    nets = [await make_node() for _ in range(3)]
    tickets = [
        JwtTicketBuilder(SECRET, "HS256").expires_in(3600).mint(net.peer_id) for net in nets[:2]
    ]
    for net, ticket in zip(nets, tickets, strict=False):
        net.discovery.add_ticket(ticket)
    first = await join(nets[0], require_ticket=VALIDATOR)
    await first.when.is_leader()
    second = await join(nets[1], require_ticket=VALIDATOR)
    outsider = await join(nets[2], require_ticket=VALIDATOR)
    await converged([first, second], voters=1)
    await wait_until(lambda: sees(nets[0], nets[2], first.id), 10, "leader sees the outsider")
    for _ in range(5):  # several rounds of membership planning pass
        await first.execute(Put("x", 1))
    assert peer_of(outsider) not in first.members
    assert not outsider.online and outsider.leader is None
    # The outsider's status says who refused it and why.
    leader_hex = nets[0].peer_id.hex()
    await wait_until(lambda: leader_hex in outsider.status()["refused_by"], 10, "refusal shown")
    assert "GROUP_NOT_ALLOWED" in outsider.status()["refused_by"][leader_hex]
    nets[1].discovery.remove_ticket(tickets[1].id())
    await wait_until(lambda: peer_of(second) not in first.members, 10, "revoked member removed")
    assert first._rt.stats.conf_changes >= 2


async def test_malformed_and_stale_messages_are_dropped_with_a_log_line(
    make_node: MakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    net = await make_node()
    group = await join(net)
    await group.when.is_leader()
    intruder = await make_node()
    intruder.discovery.add_groups(group.id)
    await wait_until(lambda: sees(net, intruder, group.id), 10, "the group sees the peer")
    secret = group_secret("kv")
    conn = await intruder.dial(net.address, ALPN)
    stream = await conn.open_stream()
    proof = membership_proof(secret, group.id, intruder.peer_id, net.peer_id)
    await stream.send(Hello(group.id, proof, ClusterState()))
    body = await stream.recv()
    assert body is not None and isinstance(reply_decoder.decode(body), Welcome)
    term = group.term
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, "node.groups.raft"):
        await stream.send_body(b"\xc1 not msgpack")
        await stream.send(VoteRequest(term - 1, intruder.peer_id, net.peer_id, 0, 0))
        await stream.send(VoteRequest(term + 5, net.peer_id, net.peer_id, 0, 0))
        await wait_until(lambda: group._rt.stats.malformed_frames >= 2, 5, "frames dropped")
        await wait_until(lambda: "stale term" in caplog.text, 5, "stale message logged")
    assert f"dropped a malformed frame from {intruder.peer_id.short()}" in caplog.text
    assert "claiming to come from" in caplog.text
    assert group.is_leader and group.term == term
    assert (await group.execute(Put("still", 1))).result == 1


async def test_handshakes_that_fail_are_refused_with_group_codes(make_node: MakeNode) -> None:
    net = await make_node()
    group = await join(net)
    other = await make_node()
    other.discovery.add_groups(group.id)
    await wait_until(lambda: sees(net, other, group.id), 10, "the group sees the peer")

    async def handshake(hello: Hello) -> Refused | Welcome:
        conn = await other.dial(net.address, ALPN)
        stream = await conn.open_stream()
        await stream.send(hello)
        body = await stream.recv()
        assert body is not None
        return reply_decoder.decode(body)

    wrong = await handshake(Hello(group.id, b"\0" * 32, ClusterState()))
    assert isinstance(wrong, Refused) and wrong.code == codes.GROUP_INVALID_PROOF
    unknown = await handshake(Hello(Digest.from_name("nope"), b"", ClusterState()))
    assert isinstance(unknown, Refused) and unknown.code == codes.GROUP_NOT_FOUND
    conn = await other.dial(net.address, ALPN)
    stream = await conn.open_stream()
    await stream.send_body(b"\x93garbage")
    closed = await conn.wait_closed()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == codes.GROUP_INVALID_HANDSHAKE


async def test_gated_peer_without_ticket_is_refused_not_allowed(make_node: MakeNode) -> None:
    net = await make_node()
    net.discovery.add_ticket(JwtTicketBuilder(SECRET, "HS256").mint(net.peer_id))
    group = await join(net, require_ticket=VALIDATOR)
    other = await make_node()
    other.discovery.add_groups(group.id)
    await wait_until(lambda: sees(net, other, group.id), 10, "the group sees the peer")
    conn = await other.dial(net.address, ALPN)
    stream = await conn.open_stream()
    proof = membership_proof(group_secret("kv"), group.id, other.peer_id, net.peer_id)
    await stream.send(Hello(group.id, proof, ClusterState()))
    body = await stream.recv()
    assert body is not None
    reply = reply_decoder.decode(body)
    assert isinstance(reply, Refused) and reply.code == codes.GROUP_NOT_ALLOWED
    assert "tickets rejected" in reply.reason


async def test_corrupt_sqlite_log_is_a_clear_error_naming_the_file(
    make_node: MakeNode, tmp_path: Path
) -> None:
    data = tmp_path / "node"
    gid = group_id(group_secret("kv"), FAST, Kv().signature())
    path = data / "groups" / f"{gid.hex()}.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    net = await make_node(data_dir=data)
    with pytest.raises(CorruptStorage) as info:
        await join(net)
    assert str(path) in str(info.value)
    assert len(net.groups) == 0
    assert path.read_bytes().startswith(b"this is not a database")  # never overwritten


async def test_a_member_whose_ticket_expires_is_removed(make_node: MakeNode) -> None:
    nets = [await make_node() for _ in range(2)]
    lasting = JwtTicketBuilder(SECRET, "HS256").expires_in(3600).mint(nets[0].peer_id)
    nets[0].discovery.add_ticket(lasting)
    short = JwtTicketBuilder(SECRET, "HS256").expires_in(2).mint(nets[1].peer_id)
    nets[1].discovery.add_ticket(short)
    first = await join(nets[0], require_ticket=VALIDATOR)
    await first.when.is_leader()
    second = await join(nets[1], require_ticket=VALIDATOR)
    await converged([first, second], voters=1)
    await wait_until(lambda: peer_of(second) not in first.members, 10, "expired member removed")
    assert peer_of(second) in first._rt.peers.revoked


async def test_a_foreign_snapshot_in_the_log_is_a_clear_error(
    make_node: MakeNode, tmp_path: Path
) -> None:
    data = tmp_path / "node"
    gid = group_id(group_secret("kv"), FAST, Kv().signature())
    path = data / "groups" / f"{gid.hex()}.sqlite"
    path.parent.mkdir(parents=True)
    with SqliteStorage(path) as storage:
        storage.save(HardState(1, None, 1), [Entry(1, 1)], None)
        storage.compact(Snapshot(SnapshotMeta(1, 1, Membership.of([key(1).peer_id])), b"\x01"))
    net = await make_node(data_dir=data)
    with pytest.raises(CorruptStorage) as info:
        await join(net)
    assert str(path) in str(info.value) and "snapshot" in str(info.value)


class Fragile(Kv):
    """Raises on one command: a bug in a state machine."""

    def apply(self, command: Put, ctx: ApplyContext) -> int:
        if command.key == "boom":
            raise RuntimeError("the machine cannot apply boom")
        return super().apply(command, ctx)


async def test_a_failing_state_machine_stops_the_member_not_the_log(
    make_node: MakeNode, tmp_path: Path
) -> None:
    data = tmp_path / "node"
    net = await make_node(data_dir=data, secret_key=key(3))
    group = await join(net, machine=Fragile())
    await group.when.is_leader()
    await group.execute(Put("fine", 1))
    with pytest.raises(GroupStopped) as info:
        await group.execute(Put("boom", 2))
    assert info.value.commands == (Put("boom", 2),) and info.value.reason == "internal"
    with pytest.raises(GroupStopped):
        await group.execute(Put("after", 3))
    # Each retry re-applies the entry, which fails again: the group stays stopped, visibly.
    await wait_until(lambda: group.status()["stopped"]["retries"] >= 1, 5, "a retry")
    assert group.status()["role"] == "stopped" and group._rt.stats.stops["internal"] >= 2
    assert group.state_machine.data == {"fine": 1}
    await net.close()
    again = await make_node(data_dir=data, secret_key=key(3))
    with pytest.raises(RuntimeError, match="cannot apply boom"):
        await join(again, machine=Fragile())  # the entry is still in the log
    fixed = await join(again, machine=Kv())
    assert fixed.state_machine.data == {"fine": 1, "boom": 2}
