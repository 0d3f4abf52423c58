import asyncio

import pytest

from deployments.upscaler.budget import PixelBudget, pixel_bytes


def test_pixel_bytes_count_the_input_and_the_upscaled_output() -> None:
    assert pixel_bytes(10, 20, 3, 4) == 10 * 20 * 3 * 17


async def admitted_order(budget: PixelBudget, sizes: list[int]) -> tuple[list[int], int]:
    """Start one holder per size at once; record when each gets in and the most bytes ever held."""
    order: list[int] = []
    peak = 0
    release = asyncio.Event()

    async def holder(i: int, nbytes: int) -> None:
        nonlocal peak
        async with budget.hold(nbytes):
            order.append(i)
            peak = max(peak, budget.in_use)
            await release.wait()
            release.clear()  # one holder leaves per event

    tasks = [asyncio.create_task(holder(i, n)) for i, n in enumerate(sizes)]
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0)
        release.set()
        await asyncio.sleep(0)
    return order, peak


def test_requests_beyond_the_budget_wait_their_turn() -> None:
    budget = PixelBudget(100)
    order, peak = asyncio.run(admitted_order(budget, [60, 30, 50, 10]))
    assert order == [0, 1, 2, 3]  # first come, first served: 10 does not overtake 50
    assert peak <= 100 and budget.in_use == 0 and budget.waiting == 0


def test_an_image_larger_than_the_budget_runs_alone() -> None:
    budget = PixelBudget(100)
    order, peak = asyncio.run(admitted_order(budget, [10, 500, 10]))
    assert order == [0, 1, 2] and peak == 500


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def scenario() -> int:
        budget = PixelBudget(100)
        async with budget.hold(80):
            waiter = asyncio.create_task(budget.hold(50).__aenter__())
            await asyncio.sleep(0)
            assert budget.waiting == 1
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert budget.waiting == 0
        return budget.in_use

    assert asyncio.run(scenario()) == 0


def test_raising_the_limit_lets_waiters_in() -> None:
    async def scenario() -> bool:
        budget = PixelBudget(100)
        async with budget.hold(80):
            entered = asyncio.Event()

            async def second() -> None:
                async with budget.hold(50):
                    entered.set()

            task = asyncio.create_task(second())
            await asyncio.sleep(0)
            assert not entered.is_set()
            budget.set_limit(200)
            await asyncio.wait_for(entered.wait(), 1)
            await task
        return budget.in_use == 0

    assert asyncio.run(scenario())
