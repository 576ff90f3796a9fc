"""The checker accepts linearizable histories and rejects the rest."""

from __future__ import annotations

import random

import pytest

from tests.groups.linearizability import Operation, RegisterModel, check_linearizable

MODEL = RegisterModel()


def op(client: int, call: int, ret: int | None, *inp: object, out: object = None) -> Operation:
    return Operation(client, call, ret, tuple(inp), out)


def test_sequential_history_is_linearizable() -> None:
    history = [op(0, 1, 2, "put", 5), op(0, 3, 4, "get", out=5), op(0, 5, 6, "add", 2, out=7)]
    assert check_linearizable(MODEL, history)


def test_stale_read_after_completed_write_is_rejected() -> None:
    history = [op(0, 1, 2, "put", 1), op(1, 3, 4, "get", out=0)]
    assert not check_linearizable(MODEL, history)


def test_concurrent_read_may_see_either_value() -> None:
    for seen in (0, 1):
        history = [op(0, 1, 4, "put", 1), op(1, 2, 3, "get", out=seen)]
        assert check_linearizable(MODEL, history)


def test_reads_may_not_go_back_in_time() -> None:
    # Both reads overlap the write, but once one read saw 1 a later read cannot see 0.
    history = [op(0, 1, 10, "put", 1), op(1, 2, 3, "get", out=1), op(2, 4, 5, "get", out=0)]
    assert not check_linearizable(MODEL, history)


def test_pending_write_may_or_may_not_take_effect() -> None:
    observed = [op(0, 1, None, "put", 3), op(1, 5, 6, "get", out=3)]
    unobserved = [op(0, 1, None, "put", 3), op(1, 5, 6, "get", out=0)]
    assert check_linearizable(MODEL, observed)
    assert check_linearizable(MODEL, unobserved)


def test_pending_write_cannot_take_effect_before_its_invocation() -> None:
    history = [op(1, 1, 2, "get", out=3), op(0, 3, None, "put", 3)]
    assert not check_linearizable(MODEL, history)


def test_fetch_and_add_results_must_form_one_order() -> None:
    ok = [op(0, 1, 5, "add", 1, out=1), op(1, 2, 6, "add", 1, out=2)]
    duplicate = [op(0, 1, 5, "add", 1, out=1), op(1, 2, 6, "add", 1, out=1)]
    assert check_linearizable(MODEL, ok)
    assert not check_linearizable(MODEL, duplicate)


def test_lost_acknowledged_write_is_rejected() -> None:
    # An acknowledged increment that a later read does not reflect: the classic lost write.
    history = [
        op(0, 1, 2, "add", 1, out=1),
        op(1, 3, 4, "add", 1, out=2),
        op(2, 5, 6, "get", out=1),
    ]
    assert not check_linearizable(MODEL, history)


def test_operation_returning_before_invocation_is_an_error() -> None:
    with pytest.raises(ValueError, match="returns before"):
        check_linearizable(MODEL, [op(0, 5, 4, "get", out=0)])


def test_large_random_sequential_histories_are_fast_and_accepted() -> None:
    rng = random.Random(7)
    for _ in range(20):
        value, t, history = 0, 0, []
        for client in range(60):
            t += 1
            if rng.random() < 0.5:
                value += 1
                history.append(op(client % 4, t, t + 1, "add", 1, out=value))
            else:
                history.append(op(client % 4, t, t + 1, "get", out=value))
            t += 1
        assert check_linearizable(MODEL, history)
        # Corrupt one read: the checker must notice.
        reads = [i for i, o in enumerate(history) if o.input[0] == "get"]
        i = rng.choice(reads)
        history[i] = op(
            history[i].client, history[i].call, history[i].ret, "get", out=history[i].output + 1
        )
        assert not check_linearizable(MODEL, history)
