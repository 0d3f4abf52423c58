"""``Recent``: one computation serves every caller within its window, concurrent callers included; a
failure is not kept."""

from __future__ import annotations

import asyncio

import pytest

from deployments.flow.recent import Recent


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_concurrent_callers_share_one_computation_in_flight() -> None:
    calls = 0
    release = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return calls

    async def flood() -> list[int]:
        recent = Recent(compute, ttl_s=0.0)  # no reuse once done: only the sharing in flight is tested
        callers = [asyncio.create_task(recent.get()) for _ in range(50)]
        await asyncio.sleep(0)  # every caller runs up to its await (asyncio runs ready tasks in order)
        release.set()
        return await asyncio.gather(*callers)

    assert asyncio.run(flood()) == [1] * 50 and calls == 1


def test_an_answer_is_reused_within_its_window_and_remade_after() -> None:
    clock, calls = Clock(), 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        return calls

    async def scenario() -> list[int]:
        recent = Recent(compute, ttl_s=2.0, clock=clock)
        answers = [await recent.get() for _ in range(10)]
        clock.t += 1.9
        answers.append(await recent.get())
        clock.t += 0.2
        answers.append(await recent.get())
        return answers

    assert asyncio.run(scenario()) == [1] * 11 + [2]


def test_a_failure_is_not_kept() -> None:
    attempts = 0

    async def compute() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("the first try fails")
        return "ok"

    async def scenario() -> str:
        recent = Recent(compute, ttl_s=60.0, clock=Clock())
        with pytest.raises(ConnectionError):
            await recent.get()
        return await recent.get()

    assert asyncio.run(scenario()) == "ok" and attempts == 2


def test_a_computation_cancelled_under_another_caller_is_made_again() -> None:
    """Serve cancels the handle calls of a request whose client went away; when that request started the
    shared computation, the cancellation must not be kept as the answer for everyone after it."""
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncio.CancelledError  # as a handle call cancelled by Serve ends
        return calls

    recent: Recent[int] = Recent(compute, ttl_s=60)

    async def scenario() -> list[int]:
        return [await recent.get(), await recent.get()]

    assert asyncio.run(scenario()) == [2, 2] and calls == 2
