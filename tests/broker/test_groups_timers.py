"""Deadlines as tasks (broker/groups/timers.py), on trio's mock clock."""

from __future__ import annotations

import pytest
import trio

from broker.groups.timers import Deadlines


async def test_a_deadline_fires_once_when_due_and_moves_when_reset(nursery, autojump_clock):
    deadlines = Deadlines()
    await nursery.start(deadlines.run)
    fired = []
    deadline = deadlines.after(10, lambda: fired.append(trio.current_time()))
    await trio.sleep(6)
    deadline.reset(10)  # a heartbeat: due 10 s from now, at 16
    await trio.sleep(20)
    assert fired == [16] and not deadline.armed
    deadline.reset(1)  # armed again after it fired
    await trio.sleep(2)
    assert fired == [16, 27]


async def test_a_deadline_moved_earlier_and_later_fires_at_its_last_time(nursery, autojump_clock):
    deadlines = Deadlines()
    await nursery.start(deadlines.run)
    fired = []
    deadline = deadlines.after(10, lambda: fired.append(trio.current_time()))
    deadline.reset(30)  # later: due at 30, not at 10
    deadline.reset(5)  # earlier again: due at 5
    deadline.reset(12)  # and later: due at 12
    await trio.sleep(11)
    assert fired == []
    await trio.sleep(2)
    assert fired == [12]


async def test_a_cancelled_deadline_does_not_fire(nursery, autojump_clock):
    deadlines = Deadlines()
    fired = []
    early = deadlines.after(1, lambda: fired.append("early"))  # armed before run() starts
    cancelled = deadlines.after(1, lambda: fired.append("cancelled"))
    cancelled.cancel()
    await nursery.start(deadlines.run)
    await trio.sleep(5)
    assert fired == ["early"]


async def test_a_failing_callback_fails_the_owner(autojump_clock):
    deadlines = Deadlines()

    def broken() -> None:
        raise RuntimeError("the state machine broke")

    with pytest.raises(ExceptionGroup) as failed:
        async with trio.open_nursery() as nursery:
            await nursery.start(deadlines.run)
            deadlines.after(1, broken)
    # Nested in the nurseries' exception groups, not swallowed.
    assert failed.group_contains(RuntimeError, match="broke")
