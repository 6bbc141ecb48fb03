"""Random produce / clean / crash / reopen sequences against a model of "latest value per key": a
log cleaned any number of times, crashed at any rename of a swap, or reopened, still gives a
consumer from the beginning the latest value of every key, at its offset."""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from log.cleaner import clean
from tests.log.log_batches import Clock
from tests.log.test_cleaner import open_log, put, stored

DELETE_RETENTION_MS = 1_000
KEYS = st.sampled_from([b"a", b"b", b"c", b"d", b"a-key-long-enough-to-be-hashed-in-the-map"])


class _Crash(Exception):
    pass


class CleanedLog(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = pathlib.Path(tempfile.mkdtemp())
        self.clock = Clock()
        self.log = open_log(self.directory, self.clock, segment_bytes=300, delete_retention_ms=DELETE_RETENTION_MS)
        # key -> (offset, value) of its latest record; value None for a tombstone.
        self.latest: dict[bytes, tuple[int, bytes | None]] = {}
        self.written: set[tuple[int, bytes, bytes | None]] = set()

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(key=KEYS, value=st.one_of(st.none(), st.binary(max_size=30)))
    def produce(self, key, value):
        offset = put(self.log, key, value, self.clock)
        self.latest[key] = (offset, value)
        self.written.add((offset, key, value))

    @rule()
    def roll(self):
        self.log.roll()

    @rule(elapsed=st.integers(0, 2 * DELETE_RETENTION_MS))
    def wait(self, elapsed):
        self.clock.now += elapsed

    @rule(buffer_keys=st.integers(1, 8), crash_at=st.one_of(st.none(), st.integers(0, 40)))
    def clean(self, buffer_keys, crash_at):
        plan = self.log.cleaning_plan(self.log.log_end_offset, {}, buffer_keys * 160)
        if plan is None:
            return
        result = clean(plan)
        if crash_at is None:
            self.log.replace_segments(result)
            return
        renames = 0
        original = pathlib.Path.rename

        def crashing(path, target):
            nonlocal renames
            if renames == crash_at:
                raise _Crash
            renames += 1
            return original(path, target)

        pathlib.Path.rename = crashing
        try:
            self.log.replace_segments(result)
        except _Crash:
            pass
        finally:
            pathlib.Path.rename = original
        self.crash()

    @rule()
    def crash(self):
        """A kill -9: nothing closed, the files as they are."""
        self.log = open_log(self.directory, self.clock, segment_bytes=300, delete_retention_ms=DELETE_RETENTION_MS)

    @precondition(lambda self: not self.log.closed)
    @rule()
    def close_and_reopen(self):
        self.log.close()
        self.crash()

    @invariant()
    def a_consumer_sees_the_latest_value_of_every_key(self):
        view = stored(self.log)
        assert [offset for offset, _, _ in view] == sorted({offset for offset, _, _ in view})
        assert set(view) <= self.written  # nothing made up
        last_seen = {key: (offset, value) for offset, key, value in view}
        for key, (offset, value) in self.latest.items():
            if value is None:  # a tombstone: there until the cleaner removes it, with the key
                assert last_seen.get(key, (offset, None)) == (offset, None)
            else:
                assert last_seen[key] == (offset, value)


CleanedLog.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
test_cleaned_log_matches_its_model = CleanedLog.TestCase
