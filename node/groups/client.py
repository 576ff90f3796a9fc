"""How a caller's commands get into the log and its strong reads get confirmed.

``assign`` has the leader append commands: on the leader through the core, on a follower by
forwarding them over the follower's link to the leader, retrying as leadership moves until
``forward_timeout``. ``execute`` then waits for each command's (index, term) to be applied
locally; a command whose entry was overwritten by a later leader was never committed, so it is
assigned again. ``read_barrier`` runs ReadIndex: once it returns, the local state machine has
applied everything committed before the call began (linearizable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from node.groups.errors import CommandsNotApplied, GroupStopped, Offline
from node.groups.inputs import ConfirmRead, Propose
from node.groups.pending import Assignment, Executed, Overwritten
from node.groups.ports import ClientHost
from node.groups.raft import NotLeader, ProposalDropped
from node.groups.wire import Forward
from node.primitives import PeerId, encode

_RETRY_PAUSE = 0.02


async def assign(rt: ClientHost, datas: Sequence[bytes], commands: Sequence[Any]) -> Assignment:
    """Until a leader appended ``datas`` (in order, at consecutive indices)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.config.forward_timeout
    while True:
        _check(rt, commands)
        leader = rt.leader
        try:
            if leader == rt.peer_id:
                return await _propose(rt, datas)
            if leader is not None and rt.linked(leader):
                return await _forward(rt, leader, datas, commands, deadline)
        except (NotLeader, ProposalDropped):
            pass
        except GroupStopped as exc:
            raise exc.with_commands(commands) from None
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise Offline(
                f"no leader took the commands within {rt.config.forward_timeout:g} s", commands
            )
        try:
            async with asyncio.timeout(min(remaining, _RETRY_PAUSE if leader else remaining)):
                await rt.wait_for(_moved_from(rt, leader))
        except TimeoutError:
            pass


async def _propose(rt: ClientHost, datas: Sequence[bytes]) -> Assignment:
    future: asyncio.Future[Assignment] = asyncio.get_running_loop().create_future()
    rt.submit(Propose(tuple(datas), future))
    return await future


async def _forward(
    rt: ClientHost,
    leader: Any,
    datas: Sequence[bytes],
    commands: Sequence[Any],
    deadline: float,
) -> Assignment:
    request, future = rt.pending.forward()
    try:
        rt.send(leader, encode(Forward(request, tuple(datas))))
        rt.stats.forwarded += len(datas)
        try:
            async with asyncio.timeout_at(deadline):
                return await future
        except TimeoutError:
            raise Offline(
                f"leader {leader.short()} did not answer within {rt.config.forward_timeout:g} s",
                commands,
                maybe_applied=True,
            ) from None
        except Offline as exc:
            raise Offline(str(exc), commands, maybe_applied=exc.maybe_applied) from None
    finally:
        rt.pending.forward_done(request)


async def execute(
    rt: ClientHost, datas: Sequence[bytes], commands: Sequence[Any]
) -> list[Executed]:
    """Until every command is applied locally; their indices and results, in order."""
    results: list[Executed | None] = [None] * len(datas)
    todo = list(range(len(datas)))
    while todo:
        assignment = await assign(rt, [datas[i] for i in todo], [commands[i] for i in todo])
        futures = [
            rt.pending.wait_applied(assignment.index + n, assignment.term, rt.applied)
            for n in range(len(todo))
        ]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        again: list[int] = []
        failure: CommandsNotApplied | None = None
        for position, outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, Executed):
                results[position] = outcome
            elif isinstance(outcome, Overwritten):
                again.append(position)
            elif isinstance(outcome, CommandsNotApplied):
                failure = failure or outcome
            elif isinstance(outcome, BaseException):
                raise outcome
        if failure is not None:
            lost = [commands[i] for i, r in enumerate(results) if r is None]
            raise failure.with_commands(lost)
        todo = again
    return [r for r in results if r is not None]


async def read_barrier(rt: ClientHost) -> None:
    """Until the local state machine reflects every write committed before this call."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.config.query_timeout
    while True:
        rt.check_running()
        context, future = rt.pending.read()
        rt.submit(ConfirmRead(context, future))
        leader = rt.leader
        try:
            # A read lost with a leader change never completes: ask again after a while.
            async with asyncio.timeout(min(deadline - loop.time(), rt.config.election_timeout)):
                await future
                return
        except TimeoutError:
            pass
        except NotLeader:
            try:
                async with asyncio.timeout_at(deadline):
                    await rt.wait_for(_moved_from(rt, leader))
            except TimeoutError:
                pass
        finally:
            rt.pending.read_done(context)
        if loop.time() >= deadline:
            raise Offline(f"no leader confirmed the read within {rt.config.query_timeout:g} s")


def _check(rt: ClientHost, commands: Sequence[Any]) -> None:
    try:
        rt.check_running()
    except CommandsNotApplied as exc:
        raise exc.with_commands(commands) from None


def _moved_from(rt: ClientHost, leader: PeerId | None) -> Callable[[], bool]:
    """True once a leader other than ``leader`` is known."""
    return lambda: rt.leader not in (None, leader)
