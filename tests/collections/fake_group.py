"""A FAKE group runtime for testing collection handles before (and beside) the real one.

``FakeGroups`` stands in for ``net.groups``: members that join the same key and state machine
signature share one in-process log. ``execute`` appends the encoded command and applies every
pending entry, in order, to each member that is not held back; a member joining late is
restored from another member's snapshot, as the real runtime would do for a learner that fell
behind a compacted log. There is no Raft, no network and no failure here: this fake only
checks that handles drive a group as documented.
"""

from __future__ import annotations

import asyncio
from typing import Any

from node.groups.errors import Offline
from node.groups.pending import Executed
from node.groups.state_machine import ApplyContext, StateMachine, leadership_preference
from node.metrics import Metrics
from node.primitives import Decoder, Digest, encode


class FakeWhen:
    def __init__(self, log: FakeLog) -> None:
        self._log = log

    async def online(self) -> None:
        while not self._log.is_online:
            await self._log.changed.wait()

    async def offline(self) -> None:
        while self._log.is_online:
            await self._log.changed.wait()


class _Changed:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class FakeLog:
    """One fake group: the committed log and the members applying it."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.members: list[FakeGroup] = []
        self.changed = _Changed()

    @property
    def is_online(self) -> bool:
        """Online while a member that may vote (not an observer) is present."""
        return any(m.voter for m in self.members)

    def deliver(self) -> None:
        for member in self.members:
            if not member.held:
                member.catch_up()


class FakeGroup:
    """One member of a fake group (what ``FakeGroups.join`` returns)."""

    def __init__(self, log: FakeLog, machine: StateMachine, options: dict[str, Any]) -> None:
        self.log = log
        self.machine = machine
        self.options = options
        self.voter = leadership_preference(machine).campaigns
        self.applied = 0
        self.held = False
        self.closed = False
        self.results: dict[int, Any] = {}
        self._decoder: Decoder[Any] = Decoder(machine.command_type)
        self.when = FakeWhen(log)

    def catch_up(self) -> None:
        while self.applied < len(self.log.entries):
            self.applied += 1
            command = self._decoder.decode(self.log.entries[self.applied - 1])
            self.results[self.applied] = self.machine.apply(command, ApplyContext(self.applied, 1))

    async def execute(self, command: Any) -> Executed:
        if self.closed or not self.log.is_online:
            raise Offline("fake group offline", [command])
        self.log.entries.append(encode(command))
        index = len(self.log.entries)
        self.log.deliver()
        await asyncio.sleep(0)  # a real commit takes at least one round trip
        while self.applied < index:  # held back: wait like a lagging member would
            await self.log.changed.wait()
        return Executed(index, self.results.pop(index, None))

    def hold(self) -> None:
        self.held = True

    def release(self) -> None:
        self.held = False
        self.catch_up()
        self.log.changed.notify()

    async def close(self) -> None:
        self.closed = True
        self.log.members.remove(self)
        self.log.changed.notify()


class FakeGroups:
    """A fake ``net.groups`` shared by the fake nodes of one test."""

    def __init__(self) -> None:
        self.logs: dict[tuple[Digest, Digest], FakeLog] = {}
        self.joined: list[FakeGroup] = []
        self.fail_with: Exception | None = None

    async def join(self, key: Digest, *, state_machine: StateMachine, **options: Any) -> FakeGroup:
        await asyncio.sleep(0)
        if self.fail_with is not None:
            raise self.fail_with
        log = self.logs.setdefault((key, state_machine.signature()), FakeLog())
        member = FakeGroup(log, state_machine, options)
        if log.members:  # a late joiner installs a snapshot of a member, then follows the log
            source = max(log.members, key=lambda m: m.applied)
            state_machine.restore(source.machine.snapshot())
            member.applied = source.applied
        log.members.append(member)
        member.catch_up()
        self.joined.append(member)
        log.changed.notify()
        return member

    def member(self, machine: StateMachine) -> FakeGroup:
        return next(m for m in self.joined if m.machine is machine)


class FakeNet:
    """A fake node: just what ``Collections`` uses (``groups`` and ``metrics``)."""

    def __init__(self, groups: FakeGroups, name: str = "fake") -> None:
        self.groups = groups
        self.metrics = Metrics(Digest.from_name(name))
