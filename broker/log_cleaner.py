"""Runs the log cleaner (log/cleaner.py) over the partitions of compacted topics, as Kafka's
LogCleaner thread does: each log.cleaner.backoff.ms it cleans every log whose dirty section calls
for a pass, rolling quiet active segments older than segment.ms first so that their records become
cleanable.

A pass runs in a process of its own (`python -m log.cleaner`, the plan and the result pickled over
its pipes): its work is CPU-bound Python, which in a thread would hold the interpreter lock away
from the event loop for milliseconds at a time. The broker keeps serving meanwhile, and swaps the
cleaned segments in on the event loop (a few renames); reads of the replaced segments finish with
the bytes they started with."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path

import trio

import log as log_package
from broker.internal_log import InternalLog
from broker.registry import Partition, TopicRegistry
from broker.storage_work import run_storage_work
from log import CleaningPlan, CleaningResult, LogError

logger = logging.getLogger(__name__)

# Where the `log` package is importable from, for the pass's process whatever the broker's sys.path.
_IMPORT_ROOT = str(Path(log_package.__file__).resolve().parent.parent)


class LogCleaner:
    def __init__(self, registry: TopicRegistry, internal_logs: list[InternalLog], *, backoff_ms: int,
                 buffer_bytes: int, clock: Callable[[], int]) -> None:
        self.registry = registry
        # The coordinators' logs (committed offsets, transaction state), which say themselves
        # when they want a pass.
        self.internal_logs = internal_logs
        self.backoff_ms = backoff_ms
        self.buffer_bytes = buffer_bytes
        self.clock = clock
        # Logs holding damage the cleaner cannot read: left alone until a restart, as Kafka marks
        # them uncleanable.
        self._uncleanable: set[Path] = set()

    async def run(self) -> None:
        while True:
            await self.clean_due()
            await trio.sleep(self.backoff_ms / 1000)

    async def clean_due(self) -> int:
        """One pass over each compacted log that needs one now; how many ran."""
        cleaned = 0
        for internal in self.internal_logs:
            cleaned += await self._attempt(internal.directory, self._clean_internal(internal))
        for partition in list(self.registry.all_partitions()):
            log = partition.log
            if log.closed or not log.config.compact:
                continue
            await trio.lowlevel.checkpoint()
            cleaned += await self._attempt(log.directory, self._clean_partition(partition))
        return cleaned

    async def _attempt(self, directory: Path, cleaning: Coroutine[None, None, bool]) -> bool:
        """Await `cleaning`, a pass over the log in `directory`, unless that log is uncleanable; a
        LogError (a full disk, say) is logged and the log tried again next time."""
        if directory in self._uncleanable:
            cleaning.close()
            return False
        try:
            return await cleaning
        except LogError as exc:
            logger.warning("%s: cleaning failed, tried again later: %s", directory, exc)
            return False

    async def _clean_internal(self, internal: InternalLog) -> bool:
        plan = internal.cleaning_plan(self.buffer_bytes)
        if plan is None or (result := await self._run_pass(plan)) is None:
            return False
        return await self._swap_in(internal.directory, result, internal.swap_in_groups(result), internal.flush)

    async def _clean_partition(self, partition: Partition) -> bool:
        log = partition.log
        now = self.clock()
        log.roll_if_due(now)
        plan = log.cleaning_plan(partition.last_stable_offset, partition.producers.last_records(),
                                 self.buffer_bytes, now)
        if plan is None or (result := await self._run_pass(plan)) is None:
            return False

        def deleted() -> bool:  # meanwhile: its directory, cleaned files included, is gone
            return log.closed or self.registry.partition(partition.topic.name, partition.index) is not partition

        if deleted():
            return False
        return await self._swap_in(log.directory, result, log.swap_in_groups(result), log.flush, deleted)

    async def _run_pass(self, plan: CleaningPlan) -> CleaningResult | None:
        """Run `plan` in a process of its own; None, logged, when it failed."""
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [_IMPORT_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])}
        try:
            finished = await trio.run_process([sys.executable, "-m", "log.cleaner"], stdin=pickle.dumps(plan),
                                              capture_stdout=True, capture_stderr=True, env=environment)
        except subprocess.CalledProcessError as exc:
            reason = exc.stderr.decode(errors="replace").strip()
            if reason.startswith("CorruptLogError"):
                self._uncleanable.add(plan.directory)
                logger.error("%s: not cleaned any more until a restart: %s", plan.directory, reason)
            else:
                logger.warning("%s: cleaning failed, tried again later: %s", plan.directory, reason)
            return None
        return pickle.loads(finished.stdout)

    async def _swap_in(self, directory: Path, result: CleaningResult, swaps: Iterator[bool],
                       flush: Callable[[], object], deleted: Callable[[], bool] = lambda: False) -> bool:
        """Swap a pass's segments in, group by group on the event loop with requests answered
        between groups (a pass may rewrite hundreds of segments), and make the renames and the
        cleaner's checkpoint durable off it; whether all were swapped in."""
        swapped = False
        for swapped in swaps:
            await trio.lowlevel.checkpoint()
            if deleted():
                return False
        await run_storage_work(flush)
        logger.info("cleaned %s: %d segment(s) into %d, %d of %d records kept (%.1f of %.1f MB), %d keys, "
                    "peak memory %.0f MB%s", directory.name,
                    sum(len(group.replaced) for group in result.groups), len(result.groups), result.records_kept,
                    result.records_read, result.bytes_written / 1e6, result.bytes_read / 1e6, result.keys_mapped,
                    result.peak_memory_bytes / 1e6, "" if swapped else " (retention took segments meanwhile: "
                    "the rest is cleaned next time)")
        return swapped
