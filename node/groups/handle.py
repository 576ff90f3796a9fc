"""``Group``: a handle on a group this node has joined, and its ``when`` conditions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from node.errors import ConfigError, DecodeError
from node.groups import client
from node.groups.errors import CommandsNotApplied, Encoding, GroupTerminated
from node.groups.pending import Executed
from node.groups.raft import Membership, Role
from node.primitives import Decoder, GroupId, PeerId, encode

if TYPE_CHECKING:
    from node.groups.runtime import GroupRuntime

Consistency = Literal["weak", "strong"]


class LogPosition(msgspec.Struct, frozen=True):
    """The last entry of the local log."""

    index: int
    term: int


class Group:
    """A handle on a joined group. Handles of one group on a node share its state; closing one
    leaves the group running for the others, closing the last leaves it on this node."""

    def __init__(self, runtime: GroupRuntime, release: Callable[[Group], Awaitable[None]]) -> None:
        self._rt = runtime
        self._release = release
        self._closed = False
        self._decoder = Decoder(runtime.machine.command_type)
        self.when = When(self)

    # -- identity and state -------------------------------------------------------------------

    @property
    def id(self) -> GroupId:
        return self._rt.gid

    @property
    def state_machine(self) -> Any:
        return self._rt.machine

    @property
    def leader(self) -> PeerId | None:
        return self._rt.leader

    @property
    def is_leader(self) -> bool:
        return self._rt.role is Role.LEADER

    @property
    def role(self) -> Role:
        return self._rt.role

    @property
    def term(self) -> int:
        return self._rt.term

    @property
    def members(self) -> Membership:
        """The latest configuration in the local log: voters and learners."""
        return self._rt.membership

    @property
    def committed(self) -> int:
        """The local commit index."""
        return self._rt.commit_index

    @property
    def applied(self) -> int:
        """The last index the local state machine applied."""
        return self._rt.applied

    @property
    def log_position(self) -> LogPosition:
        rt = self._rt
        last = rt.last_index
        return LogPosition(last, rt.term_at(last) or 0)

    @property
    def online(self) -> bool:
        """A leader is known and this node is in the configuration."""
        return self._rt.online

    def status(self) -> dict[str, Any]:
        return self._rt.status()

    # -- commands -----------------------------------------------------------------------------

    async def execute(self, command: Any) -> Executed:
        """Append ``command`` through the leader; returns once it is committed and applied
        here, with its index and what ``apply`` returned."""
        return (await self.execute_many((command,)))[0]

    async def execute_many(self, commands: Iterable[Any]) -> list[Executed]:
        """``execute`` for several commands, appended in order in one batch."""
        batch = list(commands)
        if not batch:
            return []
        datas = self._encode(batch)
        return await client.execute(self._rt, datas, batch)

    async def feed(self, command: Any) -> int:
        """Append ``command`` through the leader; returns its index once the leader assigned
        it (before it commits: a later leader may still overwrite it)."""
        return await self.feed_many((command,))

    async def feed_many(self, commands: Iterable[Any]) -> int:
        """``feed`` for several commands; returns the index of the first."""
        batch = list(commands)
        if not batch:
            raise ConfigError("feed_many needs at least one command")
        datas = self._encode(batch)
        return (await client.assign(self._rt, datas, batch)).index

    async def query(self, query: Any, consistency: Consistency = "weak") -> Any:
        """Read the state machine. ``weak``: the local state as it is; ``strong``: after
        confirming with the leader (ReadIndex) that it reflects every committed write."""
        if consistency not in ("weak", "strong"):
            raise ConfigError(f"consistency must be 'weak' or 'strong', got {consistency!r}")
        self._check()
        if consistency == "strong":
            await client.read_barrier(self._rt)
        return self._rt.machine.query(query)

    def _encode(self, commands: Sequence[Any]) -> list[bytes]:
        self._check(commands)
        datas: list[bytes] = []
        for command in commands:
            try:
                data = encode(command)
                self._decoder.decode(data)
            except (msgspec.EncodeError, TypeError, NotImplementedError, OverflowError) as exc:
                raise Encoding(f"cannot encode command {command!r}: {exc}", commands) from None
            except DecodeError as exc:
                raise Encoding(
                    f"command {command!r} is not a {_type_name(self._rt.machine.command_type)}: "
                    f"{exc}",
                    commands,
                ) from None
            datas.append(data)
        return datas

    def _check(self, commands: Sequence[Any] = ()) -> None:
        if self._closed:
            raise GroupTerminated("this group handle is closed", commands)
        try:
            self._rt.check_running()
        except CommandsNotApplied as exc:
            raise exc.with_commands(commands) from None

    # -- lifetime -----------------------------------------------------------------------------

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._release(self)

    async def __aenter__(self) -> Group:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Group({self.id.short()}, role={self.role.value}, term={self.term})"


class When:
    """Conditions to wait for; each raises ``GroupTerminated`` if the group closes first,
    ``GroupStopped`` if it stops on this node."""

    def __init__(self, group: Group) -> None:
        self._group = group

    @property
    def _rt(self) -> GroupRuntime:
        return self._group._rt

    async def leader_elected(self) -> PeerId:
        """Until a leader is known; returns it."""
        rt = self._rt
        await rt.wait_for(lambda: rt.leader is not None)
        leader = rt.leader
        assert leader is not None
        return leader

    async def leader_changed(self) -> PeerId | None:
        """Until the known leader differs from the one known now; returns the new one."""
        rt = self._rt
        current = rt.leader
        await rt.wait_for(lambda: rt.leader != current)
        return rt.leader

    async def is_leader(self) -> None:
        rt = self._rt
        await rt.wait_for(lambda: rt.role is Role.LEADER)

    async def is_follower(self) -> None:
        """Until this node follows a known leader."""
        rt = self._rt
        await rt.wait_for(lambda: rt.role is Role.FOLLOWER and rt.leader not in (None, rt.peer_id))

    async def online(self) -> None:
        """Until a leader is known and this node is in the configuration."""
        rt = self._rt
        await rt.wait_for(lambda: rt.online)

    async def offline(self) -> None:
        rt = self._rt
        await rt.wait_for(lambda: not rt.online)

    def committed(self) -> Committed:
        return Committed(self._rt)


class Committed:
    """``group.when.committed().reaches(i)``."""

    def __init__(self, runtime: GroupRuntime) -> None:
        self._rt = runtime

    async def reaches(self, index: int) -> None:
        """Until the local state machine applied ``index`` (read-your-writes across nodes)."""
        rt = self._rt
        await rt.wait_for(lambda: rt.applied >= index)


def _type_name(typ: Any) -> str:
    return getattr(typ, "__name__", repr(typ))
