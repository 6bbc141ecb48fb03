"""Deadlines as tasks: the coordinators' session, rebalance and sync timeouts.

Each armed `Deadline` is a task in its owner's nursery (`Deadlines.run`), asleep in a cancel
scope whose deadline is at or before the deadline; cancelling it ends the task. Moving it earlier
moves the scope's deadline; moving it later (a heartbeat, a transaction's next state) only notes
the new time, which the task finds when the scope's deadline passes and sleeps on to: moving a
scope's deadline costs trio a timer update, and most moves are later ones, many per timeout.
When the deadline passes, the task calls the deadline's callback.
Nothing catches what a callback raises: it fails the nursery, and with it whoever runs
`Deadlines.run`, the way any failing child fails its parent; a coordinator whose state machine
broke stops loudly rather than serving a group that half changed.

Nothing here knows about groups: a transaction coordinator's timeouts are deadlines as well.
"""

from __future__ import annotations

from collections.abc import Callable

import trio


class Deadline:
    """A callback due once at a deadline; `reset` (re-)arms it, `cancel` disarms it."""

    __slots__ = ("_owner", "_callback", "_scope", "_due")

    def __init__(self, owner: Deadlines, callback: Callable[[], None]) -> None:
        self._owner = owner
        self._callback = callback
        # The scope of the task waiting for this deadline; None while disarmed. Its deadline is
        # at or before `_due`, the deadline itself (trio.current_time() seconds).
        self._scope: trio.CancelScope | None = None
        self._due = 0.0

    @property
    def armed(self) -> bool:
        return self._scope is not None

    def reset(self, seconds: float) -> None:
        """Due `seconds` from now: an armed deadline is moved, a disarmed one armed."""
        when = self._due = trio.current_time() + seconds
        if self._scope is None:
            self._scope = trio.CancelScope(deadline=when)
            self._owner._start(self)
        elif when < self._scope.deadline:
            self._scope.deadline = when

    def cancel(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None

    async def _wait(self, scope: trio.CancelScope) -> None:
        while True:
            with scope:
                await trio.sleep_forever()
            if scope is not self._scope:
                return  # cancelled, or cancelled and re-armed by another task
            if trio.current_time() >= self._due:
                break
            # Moved later: sleep on to it.
            scope = self._scope = trio.CancelScope(deadline=self._due)
        self._scope = None
        self._callback()


class Deadlines:
    """The nursery of a set of deadlines, open while `run()` runs.

    Deadlines armed before `run()` starts wait until it does; once it has ended (the owner is
    shutting down), arming one does nothing."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._early: list[Deadline] = []
        self._closed = False

    def after(self, seconds: float, callback: Callable[[], None]) -> Deadline:
        """A deadline armed `seconds` from now."""
        deadline = Deadline(self, callback)
        deadline.reset(seconds)
        return deadline

    def disarmed(self, callback: Callable[[], None]) -> Deadline:
        """A deadline that `reset` arms."""
        return Deadline(self, callback)

    def _start(self, deadline: Deadline) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(deadline._wait, deadline._scope)
        elif not self._closed:
            self._early.append(deadline)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run the deadlines until cancelled; raises what a callback raised."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for deadline in dict.fromkeys(self._early):
                    if deadline.armed:
                        nursery.start_soon(deadline._wait, deadline._scope)
                self._early.clear()
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._closed = True
