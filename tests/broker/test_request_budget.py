"""The broker-wide budget of request bytes (queued.max.request.bytes): claims wait in arrival
order, and a wait given up (its connection closed) never leaks or blocks the budget."""

import pytest
import trio

from broker.config import BrokerConfig, parse_config
from broker.connection import RequestBudget
from broker.server import Broker
from wire_client import WireClient


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


async def test_stop_does_not_wait_for_a_connection_waiting_for_the_budget(tmp_path, nursery):
    config = BrokerConfig(port=0, data_dir=tmp_path / "data", max_request_bytes=250_000,
                          queued_max_request_bytes=300_000)
    async with Broker(config) as broker:
        await nursery.start(broker.serve)
        holding = await WireClient.connect(broker.port)
        waiting = await WireClient.connect(broker.port)
        await holding.send_raw((200_000).to_bytes(4, "big") + b"\x00" * 100)
        await trio.testing.wait_all_tasks_blocked()
        await waiting.send_raw((200_000).to_bytes(4, "big"))
        await trio.testing.wait_all_tasks_blocked()
        assert broker.request_budget.available == 100_000  # the second frame is waiting for room
        broker.stop()
        with trio.fail_after(5):
            await broker.stopped.wait()
        assert await holding.receive_frame() is None and await waiting.receive_frame() is None


def test_a_request_limit_over_the_budget_is_refused_at_start_up(capsys):
    # Such a request could never fit: its connection would wait until the read timeout.
    with pytest.raises(SystemExit):
        parse_config(["--max-request-bytes", "2000000", "--queued-max-request-bytes", "1000000"], environ={})
    assert "--max-request-bytes must not be over --queued-max-request-bytes" in capsys.readouterr().err
    assert parse_config(["--max-request-bytes", "1000000", "--queued-max-request-bytes", "1000000"],
                        environ={}).queued_max_request_bytes == 1000000
