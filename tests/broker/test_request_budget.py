"""The broker-wide budget of request bytes (queued.max.request.bytes): claims wait in arrival
order, and a wait given up (its connection closed) never leaks or blocks the budget."""

import trio

from broker.connection import RequestBudget


async def test_claims_that_do_not_fit_wait_in_arrival_order(nursery):
    budget = RequestBudget(100)
    await budget.claim(80)
    granted = []

    async def claim(size):
        await budget.claim(size)
        granted.append(size)

    nursery.start_soon(claim, 50)
    await trio.testing.wait_all_tasks_blocked()
    nursery.start_soon(claim, 10)
    await trio.testing.wait_all_tasks_blocked()
    # 10 bytes would fit, but the 50 asked first.
    assert granted == [] and not budget.try_claim(10)
    budget.release(30)
    await trio.testing.wait_all_tasks_blocked()
    assert granted == [50]
    budget.release(10)
    await trio.testing.wait_all_tasks_blocked()
    assert granted == [50, 10]
    assert budget.available == 0


async def test_a_cancelled_wait_gives_way_to_the_claims_behind_it(nursery):
    budget = RequestBudget(100)
    await budget.claim(60)
    granted = []

    async def claim(size, scope_box=None):
        with trio.CancelScope() as scope:
            if scope_box is not None:
                scope_box.append(scope)
            await budget.claim(size)
            granted.append(size)

    cancelled = []
    nursery.start_soon(claim, 90, cancelled)
    await trio.testing.wait_all_tasks_blocked()
    nursery.start_soon(claim, 30)
    await trio.testing.wait_all_tasks_blocked()
    assert granted == []
    cancelled[0].cancel()
    await trio.testing.wait_all_tasks_blocked()
    assert granted == [30]
    assert budget.available == 10
