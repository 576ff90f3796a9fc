"""A small linearizability checker (Wing & Gong's search with Lowe's memoization, the
algorithm porcupine implements) for single-object histories.

A history is a list of operations with invocation and response times; an operation that never
responded (its client crashed, or its leader was deposed) has ``ret=None``: it may have taken
effect at any point after its invocation, or never. The history is linearizable if some total
order of the completed operations (plus any subset of the pending ones) respects real time
(``a.ret < b.call`` puts ``a`` first) and is a legal sequential run of the model.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

S = TypeVar("S", bound=Hashable)

PENDING: Any = object()
"""The output of an operation that never returned: any output is acceptable."""


@dataclass(frozen=True)
class Operation:
    client: int
    call: int
    ret: int | None
    input: tuple[Any, ...]
    output: Any = None


class Model(Protocol, Generic[S]):
    def init(self) -> S: ...

    def step(self, state: S, input: tuple[Any, ...], output: Any) -> tuple[bool, S]:
        """Whether ``input`` may produce ``output`` (or anything, for ``PENDING``) in ``state``,
        and the state after it."""
        ...


class RegisterModel:
    """An integer register: ``("put", v)`` -> None, ``("add", k)`` -> new value,
    ``("get",)`` -> value."""

    def init(self) -> int:
        return 0

    def step(self, state: int, input: tuple[Any, ...], output: Any) -> tuple[bool, int]:
        op = input[0]
        if op == "put":
            return True, input[1]
        if op == "add":
            new = state + input[1]
            return output is PENDING or output == new, new
        if op == "get":
            return output is PENDING or output == state, state
        raise ValueError(f"unknown register operation {input!r}")


def check_linearizable(model: Model[S], history: Sequence[Operation]) -> bool:
    ops = sorted(history, key=lambda op: op.call)
    n = len(ops)
    never = float("inf")
    rets = [op.ret if op.ret is not None else never for op in ops]
    outputs = [op.output if op.ret is not None else PENDING for op in ops]
    complete = 0
    for i, op in enumerate(ops):
        if op.ret is not None:
            if op.ret <= op.call:
                raise ValueError(f"operation returns before it is invoked: {op}")
            complete |= 1 << i
    seen: set[tuple[int, S]] = set()

    def search(done: int, state: S) -> bool:
        if done & complete == complete:
            return True
        if (done, state) in seen:
            return False
        seen.add((done, state))
        open_ops = [i for i in range(n) if not done >> i & 1]
        first_ret = min(rets[i] for i in open_ops)
        for i in open_ops:
            if ops[i].call > first_ret:
                break  # some open operation returned before this one was invoked
            ok, after = model.step(state, ops[i].input, outputs[i])
            if ok and search(done | 1 << i, after):
                return True
        return False

    return search(0, model.init())
