"""Deadlines as tasks: the coordinators' session, rebalance and sync timeouts.

Each armed `Deadline` is a task in its owner's nursery (`Deadlines.run`), asleep in a cancel
scope whose deadline is the deadline: moving it (a heartbeat) moves the scope's deadline, and
cancelling it ends the task. When the deadline passes, the task calls the deadline's callback.
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

    __slots__ = ("_owner", "_callback", "_scope")

    def __init__(self, owner: Deadlines, callback: Callable[[], None]) -> None:
        self._owner = owner
        self._callback = callback
        # The scope of the task waiting for this deadline; None while disarmed.
        self._scope: trio.CancelScope | None = None

    @property
    def armed(self) -> bool:
        return self._scope is not None

    def reset(self, seconds: float) -> None:
        """Due `seconds` from now: an armed deadline is moved, a disarmed one armed."""
        when = trio.current_time() + seconds
        if self._scope is not None:
            self._scope.deadline = when
        else:
            self._scope = trio.CancelScope(deadline=when)
            self._owner._start(self)

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
            if trio.current_time() >= scope.deadline:
                break
            # Moved later after it had passed, before this task woke up: wait again.
            scope = self._scope = trio.CancelScope(deadline=scope.deadline)
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
