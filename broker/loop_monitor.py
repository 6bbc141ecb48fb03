"""Reports task steps that hold the event loop too long: while one runs, no other client is served."""

from __future__ import annotations

import contextvars
import logging
import os
import time

import trio

from protocol import messages

logger = logging.getLogger(__name__)

# A step longer than this is felt by every other client as added latency.
BLOCKED_WARNING_SECONDS = 0.1
# How often the threads' run-queue waits are sampled (reads of /proc), between steps.
_SAMPLE_INTERVAL_SECONDS = 0.01
_THREADS = "/proc/self/task"
# The (API key, version) of the request a connection task handles, or handled last: named in the
# warning, so that a slow step points at a request, not only at a connection.
CURRENT_REQUEST: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("current_request",
                                                                                         default=None)


class LoopMonitor(trio.abc.Instrument):
    """A trio instrument timing each task step, logging a WARNING that names the task when one
    held the loop longer than `threshold` seconds.

    Wall-clock time, so that a blocking system call (an fsync) counts; minus the longest time a
    thread of the process waited for a CPU meanwhile (Linux's schedstat): on a loaded machine the
    loop waits for a CPU, or for the GIL held by a worker thread that waits for one, and that is
    not the step's doing."""

    def __init__(self, threshold: float = BLOCKED_WARNING_SECONDS,
                 sample_interval: float = _SAMPLE_INTERVAL_SECONDS) -> None:
        self.threshold = threshold
        self.sample_interval = sample_interval
        self._run_queue = _RunQueueWaits()
        # Added during a step: the first one timed is the rest of that step.
        self._step_started = self._sampled_at = time.perf_counter()
        self._waited = self._run_queue.read()

    def close(self) -> None:
        """Close the files it samples; once the instrument is removed."""
        self._run_queue.close()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        now = time.perf_counter()
        if now - self._sampled_at >= self.sample_interval:
            self._waited, self._sampled_at = self._run_queue.read(), now
            # The sample is the monitor's own cost, not the step's.
            now = time.perf_counter()
        self._step_started = now

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        now = time.perf_counter()
        elapsed = now - self._step_started
        if elapsed > self.threshold:
            waited = self._run_queue.read()
            # The waits since the last sample, which came at most one interval before the step.
            held = elapsed - max((wait - self._waited.get(thread, 0.0) for thread, wait in waited.items()),
                                 default=0.0)
            self._waited, self._sampled_at = waited, now
            if held > self.threshold:
                logger.warning("event loop blocked for %.0f ms by one step of task %s%s (%.0f ms more waiting "
                               "for a CPU)", held * 1000, task.name, _request_of(task), (elapsed - held) * 1000)


def _request_of(task: trio.lowlevel.Task) -> str:
    request = task.context.get(CURRENT_REQUEST)
    if request is None:
        return ""
    api_key, version = request
    codec = messages.REQUESTS.get(api_key)
    return f", request {codec.name if codec else api_key} v{version}"


class _RunQueueWaits:
    """Seconds each thread of the process has spent runnable but not running (none off Linux).

    Each thread's schedstat stays open, read again with one pread: opening it for every sample
    cost some 25 µs a thread, a good part of a small request's time when sampled each 10 ms."""

    def __init__(self) -> None:
        self._files: dict[str, int] = {}

    def read(self) -> dict[str, float]:
        waits: dict[str, float] = {}
        try:
            threads = os.listdir(_THREADS)
        except OSError:
            return waits
        files = self._files
        for thread in threads:
            descriptor = files.get(thread)
            try:
                if descriptor is None:
                    descriptor = files[thread] = os.open(f"{_THREADS}/{thread}/schedstat", os.O_RDONLY)
                waits[thread] = int(os.pread(descriptor, 64, 0).split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                pass  # the thread ended meanwhile; its file is closed below
        for thread in files.keys() - waits.keys():
            os.close(files.pop(thread))
        return waits

    def close(self) -> None:
        for descriptor in self._files.values():
            os.close(descriptor)
        self._files.clear()
