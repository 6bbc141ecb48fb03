"""The loop monitor names a task whose step holds the event loop too long, and only that."""

import logging
import os
import threading
import time

import pytest
import trio

from broker.loop_monitor import CURRENT_REQUEST, LoopMonitor

THRESHOLD = 0.05


async def sleeps_on_the_loop() -> None:
    time.sleep(THRESHOLD * 3)  # a blocking call: what the monitor is there to catch


async def yields_often() -> None:
    for _ in range(20):
        await trio.sleep(THRESHOLD / 10)


async def handles_a_slow_produce() -> None:
    CURRENT_REQUEST.set((0, 9))
    time.sleep(THRESHOLD * 3)


async def reported_while_running(caplog, *tasks) -> list[str]:
    """What the monitor warned of while `tasks` ran side by side, each in a task of its own."""
    monitor = LoopMonitor(THRESHOLD)
    trio.lowlevel.add_instrument(monitor)
    try:
        with caplog.at_level(logging.WARNING, logger="broker.loop_monitor"):
            async with trio.open_nursery() as nursery:
                for task in tasks:
                    nursery.start_soon(task)
    finally:
        trio.lowlevel.remove_instrument(monitor)
        monitor.close()
    return [record.getMessage() for record in caplog.records]


async def test_a_blocking_step_is_reported_with_its_task(caplog):
    reported = await reported_while_running(caplog, yields_often, sleeps_on_the_loop)
    assert len(reported) == 1 and "sleeps_on_the_loop" in reported[0], reported


async def test_the_report_names_the_request_the_task_handles(caplog):
    (reported,) = await reported_while_running(caplog, handles_a_slow_produce)
    assert "handles_a_slow_produce, request ProduceRequest v9 " in reported


async def test_steps_that_yield_are_not_reported(caplog):
    assert await reported_while_running(caplog, yields_often) == []


def sampled_threads() -> set[int]:
    """The threads whose schedstat this process has open."""
    threads = set()
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue  # the listing's own descriptor, closed since
        if target.endswith("/schedstat"):
            threads.add(int(target.split("/")[-2]))
    return threads


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="samples Linux's /proc")
async def test_the_files_it_samples_are_closed_when_their_thread_ends_and_at_close():
    monitor = LoopMonitor(THRESHOLD, sample_interval=0)  # every step samples
    done = threading.Event()
    worker = threading.Thread(target=done.wait)
    worker.start()
    trio.lowlevel.add_instrument(monitor)
    try:
        await trio.lowlevel.checkpoint()
        assert worker.native_id in sampled_threads()
        done.set()
        worker.join()
        # join() returns before the kernel has taken the thread's task away, and until then the
        # thread is still sampled: wait for the task to go (the next step samples again).
        with trio.fail_after(10):
            while os.path.exists(f"/proc/self/task/{worker.native_id}"):
                await trio.sleep(0.001)
        await trio.lowlevel.checkpoint()
        assert worker.native_id not in sampled_threads()
    finally:
        trio.lowlevel.remove_instrument(monitor)
        monitor.close()
    assert not sampled_threads()
