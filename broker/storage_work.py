"""The one way broker code runs blocking storage work off the event loop.

Storage work is whatever may block on the disk: fsyncs above all, and creating, renaming,
unlinking, opening and closing files and logs. It runs in trio's worker threads, so the event
loop keeps serving; once started it runs to its end even if its caller is cancelled (trio waits
for the thread), so no file is left half-written by a cancellation.

Threads come from trio's default limiter (40 at a time, shared with other to_thread calls that
bring no limiter of their own), not from a storage limiter of their own: concurrent fsyncs of
different files (acks=all produces to many partitions, each partition's group commit) are what
lets the file system batch them into few journal commits, and a small limiter would queue them
instead. Fan-outs over many items (run_storage_work_each: creating or closing partitions) take
at most STORAGE_FAN_OUT of those threads, all of them together, so that creating topics of
thousands of partitions leaves the others to the fsyncs of requests served meanwhile. CPU work
(decompressing records) is not storage work and keeps a limiter of its own.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import TypeVar

import trio

T = TypeVar("T")
R = TypeVar("R")

# Creating or closing many partitions is mostly fsyncs: this many threads at once let the file
# system batch them into far fewer journal commits; 8 measured no faster than 4.
STORAGE_FAN_OUT = 4
_FAN_OUT_THREADS = trio.CapacityLimiter(STORAGE_FAN_OUT)


async def run_storage_work(function: Callable[..., R], *args) -> R:
    """function(*args) in a worker thread: its result, or its exception raised here."""
    return await trio.to_thread.run_sync(function, *args)


async def run_storage_work_each(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[function(item) for item in items], in up to STORAGE_FAN_OUT worker threads (shared by
    every fan-out running); the results in order. The first failure stops the threads taking
    more items and is raised once the items being worked on are done, the results made so far
    dropped (so that logs opened meanwhile close their files)."""
    todo = collections.deque(enumerate(items))
    results: list = [None] * len(todo)
    failures: list[Exception] = []

    def work() -> None:
        while not failures:
            try:
                index, item = todo.popleft()  # atomic: the threads share one queue
            except IndexError:
                return
            try:
                results[index] = function(item)
            except Exception as exc:
                failures.append(exc)

    async def worker() -> None:
        async with _FAN_OUT_THREADS:
            await run_storage_work(work)

    async with trio.open_nursery() as nursery:
        for _ in range(min(STORAGE_FAN_OUT, len(todo))):
            nursery.start_soon(worker)
    if failures:
        results.clear()
        raise failures[0]
    return results
