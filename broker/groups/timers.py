"""Deadlines on trio's clock: the coordinator's session, rebalance and sync timeouts."""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable

import trio

logger = logging.getLogger(__name__)


class Timer:
    """A callback due at a deadline; cancelling it is cheap (it stays queued, inert)."""

    __slots__ = ("deadline", "callback", "cancelled")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class DeadlineQueue:
    """Runs each timer's callback once its deadline passes, from the task running `run()`."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._earlier = trio.Event()

    def call_after(self, seconds: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(trio.current_time() + seconds, callback)
        heapq.heappush(self._heap, (timer.deadline, next(self._order), timer))
        if self._heap[0][2] is timer:
            self._earlier.set()
        return timer

    def _run_due(self) -> None:
        now = trio.current_time()
        while self._heap and self._heap[0][0] <= now:
            timer = heapq.heappop(self._heap)[2]
            if timer.cancelled:
                continue
            timer.cancelled = True
            try:
                timer.callback()
            except Exception:
                # One bad callback must not stop every other group's timeouts.
                logger.exception("timer callback failed")

    async def run(self) -> None:
        while True:
            self._run_due()
            self._earlier = trio.Event()
            deadline = self._heap[0][0] if self._heap else math.inf
            with trio.move_on_at(deadline):
                await self._earlier.wait()
