"""Reports task steps that hold the event loop too long: while one runs, no other client is served."""

from __future__ import annotations

import logging
import os
import time

import trio

logger = logging.getLogger(__name__)

# A step longer than this is felt by every other client as added latency.
BLOCKED_WARNING_SECONDS = 0.1
# How often the thread's run-queue wait is sampled (a read of /proc), between steps.
_SAMPLE_INTERVAL_SECONDS = 0.01
_SCHEDSTAT = "/proc/thread-self/schedstat"


class LoopMonitor(trio.abc.Instrument):
    """A trio instrument timing each task step, logging a WARNING that names the task when one
    held the loop longer than `threshold` seconds.

    Wall-clock time, so that a blocking system call (an fsync) counts; minus the time the thread
    waited for a CPU (Linux's schedstat), so that a loaded machine does not pass for a slow step.
    Create and use it on the event loop's thread; close() when done."""

    def __init__(self, threshold: float = BLOCKED_WARNING_SECONDS) -> None:
        self.threshold = threshold
        try:
            self._schedstat: int | None = os.open(_SCHEDSTAT, os.O_RDONLY)
        except OSError:
            self._schedstat = None
        # Added during a step: the first one timed is the rest of that step.
        self._step_started = self._sampled_at = time.perf_counter()
        self._waited = self._run_queue_wait()

    def _run_queue_wait(self) -> float:
        """Seconds this thread has spent runnable but not running, since it started."""
        if self._schedstat is None:
            return 0.0
        return int(os.pread(self._schedstat, 100, 0).split()[1]) / 1e9

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        now = self._step_started = time.perf_counter()
        if now - self._sampled_at > _SAMPLE_INTERVAL_SECONDS:
            self._waited, self._sampled_at = self._run_queue_wait(), now

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        now = time.perf_counter()
        elapsed = now - self._step_started
        if elapsed > self.threshold:
            waited = self._run_queue_wait()
            # The wait since the last sample, which came at most one interval before the step.
            held = elapsed - (waited - self._waited)
            self._waited, self._sampled_at = waited, now
            if held > self.threshold:
                logger.warning("event loop blocked for %.0f ms by one step of task %s (%.0f ms more waiting "
                               "for a CPU)", held * 1000, task.name, (elapsed - held) * 1000)

    def close(self) -> None:
        if self._schedstat is not None:
            os.close(self._schedstat)
            self._schedstat = None
