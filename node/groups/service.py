"""``net.groups``: joining groups, and the ``/mosaik/groups/1`` protocol endpoint of a node.

The node keeps one runtime per group id, shared by every handle joined with the same key and
parameters; the id is advertised in discovery while at least one handle is open. Connections
between two nodes are shared by all their groups and used in both directions: a peer's dial
serves our streams to it too, and streams of either side are accepted on any connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any, Protocol

from node._tasks import TaskScope
from node.errors import ConfigError, DecodeError, MosaikError
from node.groups import ids
from node.groups.config import ConsensusConfig
from node.groups.exchange import refuse
from node.groups.handle import Group
from node.groups.metrics import GroupsCollector
from node.groups.ports import DiscoveryView, NodeContext
from node.groups.raft import LeadershipPreference, MemoryStorage, SqliteStorage, Storage
from node.groups.runtime import GroupRuntime, GroupSpec
from node.groups.state_machine import StateMachine, leadership_preference
from node.groups.wire import ALPN, HANDSHAKE_TIMEOUT, hello_decoder
from node.metrics import Metrics
from node.primitives import Digest, GroupId, PeerId
from node.tickets import RequireTicket, as_validators
from node.transport import Connection, Endpoint, FramedStream, codes

log = logging.getLogger("mosaik.groups")


class _Discovery(DiscoveryView, Protocol):
    def events(self) -> Any: ...

    async def dial(self, peer: PeerId, alpn: str) -> Connection: ...

    def add_groups(self, *groups: Digest) -> None: ...

    def remove_groups(self, *groups: Digest) -> None: ...


class _Node(Protocol):
    """What ``Groups`` reads from the ``Network`` it belongs to."""

    endpoint: Endpoint
    metrics: Metrics
    data_dir: Path | None

    @property
    def peer_id(self) -> PeerId: ...

    @property
    def discovery(self) -> Any: ...


class Groups:
    """The node's groups. ``await net.groups.join(key, state_machine=...)`` returns a handle."""

    def __init__(self, net: _Node) -> None:
        self._discovery: _Discovery = net.discovery
        self._endpoint = net.endpoint
        self._data_dir = net.data_dir
        self._context = NodeContext(
            net.peer_id, self._discovery, self.connection, net.endpoint.max_frame
        )
        self._runtimes: dict[GroupId, GroupRuntime] = {}
        self._handles: dict[GroupId, set[Group]] = {}
        self._joining: dict[GroupId, asyncio.Lock] = {}
        self._accepted: dict[PeerId, Connection] = {}
        self._serving: set[Connection] = set()
        self._tasks = TaskScope("groups")
        self._closed = False
        self._endpoint.register(ALPN, self._accept)
        self._tasks.spawn(self._follow_catalog(), "catalog")
        net.metrics.registry.register(GroupsCollector(self._runtimes, net.metrics.network))

    # -- joining ------------------------------------------------------------------------------

    async def join(
        self,
        key: str | bytes | Digest,
        *,
        state_machine: StateMachine,
        storage: Storage | str | Path | None = None,
        bootstrap_expect: int = 1,
        max_voters: int = 5,
        consensus: ConsensusConfig | None = None,
        require_ticket: RequireTicket = None,
        preference: LeadershipPreference | None = None,
    ) -> Group:
        """Join (or open another handle on) the group of ``key``.

        ``storage``: a ``Storage``, or a path for a SQLite log; by default SQLite at
        ``<data_dir>/groups/<group id>.sqlite`` when the node has a data directory, else memory.
        ``bootstrap_expect``: how many members must be discovered before the first
        configuration is formed. ``max_voters``: voters are kept odd up to this many; other
        members are learners; the leader's value applies. ``preference`` (default: the state
        machine's ``leadership_preference``, else normal): observers are kept as learners.

        Joining a group this node already runs (same id) returns another handle on it: the
        running state machine is shared and the new ``state_machine`` only served to compute
        the id. Raises ``CorruptStorage`` (naming the file) for an unusable SQLite log.
        """
        if self._closed:
            raise ConfigError("groups: the node is closed")
        if bootstrap_expect < 1:
            raise ConfigError(f"bootstrap_expect must be at least 1, got {bootstrap_expect}")
        if max_voters < 1:
            raise ConfigError(f"max_voters must be at least 1, got {max_voters}")
        if not isinstance(state_machine, StateMachine):
            raise ConfigError(f"state_machine: {state_machine!r} is not a StateMachine")
        consensus = consensus or ConsensusConfig()
        validators = as_validators(require_ticket)
        secret = ids.group_secret(key)
        gid = ids.group_id(
            secret, consensus, state_machine.signature(), [v.signature() for v in validators]
        )
        async with self._joining.setdefault(gid, asyncio.Lock()):
            runtime = self._runtimes.get(gid)
            if runtime is None:
                spec = GroupSpec(
                    gid=gid,
                    secret=secret,
                    machine=state_machine,
                    consensus=consensus,
                    validators=validators,
                    bootstrap_expect=bootstrap_expect,
                    max_voters=max_voters,
                    preference=preference or leadership_preference(state_machine),
                    storage_path=None,
                )
                runtime = await self._start(spec, storage)
            handle = Group(runtime, self._release)
            self._handles[gid].add(handle)
            return handle

    async def _start(self, spec: GroupSpec, storage: Storage | str | Path | None) -> GroupRuntime:
        gid = spec.gid
        owns = not (storage is not None and not isinstance(storage, str | Path))
        path: Path | None = None
        if isinstance(storage, str | Path):
            path = Path(storage)
        elif storage is None and self._data_dir is not None:
            path = self._data_dir / "groups" / f"{gid.hex()}.sqlite"
        opened: Storage
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            opened = await asyncio.to_thread(SqliteStorage, path)
        elif storage is None:
            opened = MemoryStorage()
        else:
            assert not isinstance(storage, str | Path)
            opened = storage
        spec = dataclasses.replace(spec, storage_path=path)
        runtime = GroupRuntime(self._context, spec, opened, owns=owns)
        try:
            await runtime.start()
        except BaseException:
            await runtime.close()
            raise
        self._runtimes[gid] = runtime
        self._handles[gid] = set()
        markers = (gid, ids.observer_marker(gid)) if runtime.observer else (gid,)
        self._discovery.add_groups(*markers)
        log.info("joined group %s (storage: %s)", gid.short(), path or type(opened).__name__)
        return runtime

    async def _release(self, handle: Group) -> None:
        gid = handle.id
        handles = self._handles.get(gid)
        if handles is None:
            return
        handles.discard(handle)
        if handles:
            return
        runtime = self._runtimes.pop(gid)
        del self._handles[gid]
        self._discovery.remove_groups(gid, ids.observer_marker(gid))
        await runtime.close()
        log.info("left group %s", gid.short())

    # -- state --------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Per group: role, term, leader, members, log positions, and the state machine's
        ``status()`` if it has one. The node's ``/status`` shows it under ``"groups"``."""
        return [rt.status() for rt in self._runtimes.values()]

    def problems(self) -> list[str]:
        """Why the node's groups are not healthy (``/healthz``): one line per stopped group."""
        problems = []
        for rt in self._runtimes.values():
            if (stopped := rt.stopped) is not None:
                problems.append(
                    f"group {rt.name} stopped ({stopped.reason}, {stopped.retries} retries): "
                    f"{stopped.error}"
                )
        return problems

    def __len__(self) -> int:
        return len(self._runtimes)

    async def close(self) -> None:
        """Leave every group (a leader first hands its leadership to a caught-up voter)."""
        if self._closed:
            return
        self._closed = True
        runtimes = list(self._runtimes.values())
        self._runtimes.clear()
        self._handles.clear()
        await asyncio.gather(*(rt.close() for rt in runtimes))
        await self._tasks.aclose()

    # -- connections --------------------------------------------------------------------------

    async def connection(self, peer: PeerId) -> Connection:
        """A connection to ``peer`` for groups traffic: one it opened to us, else our dial."""
        accepted = self._accepted.get(peer)
        if accepted is not None and not accepted.closed:
            return accepted
        conn = await self._discovery.dial(peer, ALPN)
        if conn not in self._serving and not self._closed:
            self._serving.add(conn)
            self._tasks.spawn(self._serve_connection(conn), f"conn/{peer.short()}")
        return conn

    async def _accept(self, conn: Connection) -> None:
        previous = self._accepted.get(conn.peer_id)
        if previous is not None and previous is not conn:
            # A live peer dials again only once its connection is gone: the old one is stale
            # (the peer restarted) even if it looks open until QUIC's idle timeout.
            previous.close(codes.SUCCESS, "superseded by a new connection")
        self._accepted[conn.peer_id] = conn
        self._serving.add(conn)
        try:
            await self._serve_connection(conn)
        finally:
            if self._accepted.get(conn.peer_id) is conn:
                del self._accepted[conn.peer_id]

    async def _serve_connection(self, conn: Connection) -> None:
        try:
            while True:
                stream = await conn.accept_stream()
                if self._closed:
                    return
                self._tasks.spawn(self._serve_stream(conn, stream), f"in/{conn.peer_id.short()}")
        except MosaikError as exc:
            log.debug("groups connection %r ended: %s", conn, exc)
        finally:
            self._serving.discard(conn)

    async def _serve_stream(self, conn: Connection, stream: FramedStream) -> None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                body = await stream.recv()
        except (TimeoutError, MosaikError):
            return
        if body is None:
            return
        try:
            hello = hello_decoder.decode(body)
        except DecodeError as exc:
            log.info("groups: malformed handshake from %s: %s", conn.peer_id.short(), exc)
            conn.close(codes.GROUP_INVALID_HANDSHAKE, "malformed group handshake")
            return
        runtime = self._runtimes.get(hello.group)
        if runtime is None or runtime.closed:
            await refuse(stream, codes.GROUP_NOT_FOUND, f"no group {hello.group.short()} here")
            return
        try:
            await runtime.serve(conn.peer_id, stream, hello)
        except MosaikError as exc:
            log.debug("group %s: stream from %s ended: %s", runtime.name, conn.peer_id.short(), exc)

    async def _follow_catalog(self) -> None:
        # Connections to a peer's dead process are closed by discovery when it learns of the
        # restart (Endpoint.forget_peer); groups only re-reads membership.
        async for _event in self._discovery.events():
            for runtime in self._runtimes.values():
                runtime.catalog_changed()
