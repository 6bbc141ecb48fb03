"""The loop monitor names a task whose step holds the event loop too long, and only that."""

import os
import subprocess
import sys
import threading

import pytest
import trio

from broker.loop_monitor import LoopMonitor

THRESHOLD = 0.05

# The scenarios run in a process of their own, whose only thread is the loop's: the monitor
# subtracts the longest wait for a CPU of any thread of its process (a thread holding the GIL
# while it waits delays the loop), so beside pytest's own threads on a loaded machine a blocked
# step could be explained away by their waits, and the test would say more about the machine
# than about the monitor.
SCENARIOS = """
import logging, sys, time
import trio
from broker.loop_monitor import CURRENT_REQUEST, LoopMonitor

THRESHOLD = float(sys.argv[1])


async def sleeps_on_the_loop():
    time.sleep(THRESHOLD * 3)  # a blocking call: what the monitor is there to catch


async def yields_often():
    for _ in range(20):
        await trio.sleep(THRESHOLD / 10)


async def handles_a_slow_produce():
    CURRENT_REQUEST.set((0, 9))
    time.sleep(THRESHOLD * 3)


async def main():
    monitor = LoopMonitor(THRESHOLD)
    trio.lowlevel.add_instrument(monitor)
    try:
        async with trio.open_nursery() as nursery:
            for name in sys.argv[2:]:
                nursery.start_soon(globals()[name])
    finally:
        trio.lowlevel.remove_instrument(monitor)
        monitor.close()


logging.basicConfig(format="%(message)s", stream=sys.stdout, level=logging.WARNING)
trio.run(main)
"""


def reported_while_running(*tasks: str) -> list[str]:
    """What the monitor warned of while the SCENARIOS `tasks` ran side by side, each in a task of
    its own, in a process of their own."""
    done = subprocess.run([sys.executable, "-c", SCENARIOS, str(THRESHOLD), *tasks], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_blocking_step_is_reported_with_its_task():
    reported = reported_while_running("yields_often", "sleeps_on_the_loop")
    assert len(reported) == 1 and "sleeps_on_the_loop" in reported[0], reported


def test_the_report_names_the_request_the_task_handles():
    (reported,) = reported_while_running("handles_a_slow_produce")
    assert "handles_a_slow_produce, request ProduceRequest v9 " in reported


def test_steps_that_yield_are_not_reported():
    assert reported_while_running("yields_often") == []


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
