"""Faults injected on purpose, for testing clients' retry and error paths (franz-go's kfake has
the idea; this is the Python broker's): the next N requests of an API, optionally only those naming
a topic, partition or group, are answered with an error code, delayed, dropped without an answer,
or have their connection closed; and a partition's appends or fetches are paused until resumed
(a paused append waits, up to its request's timeout; a paused fetch finds no new data).

An error answer is built from the request, without running the handler (a Produce answered
NOT_LEADER_OR_FOLLOWER appends nothing, as on Kafka): the error goes in each partition of the
APIs that answer per partition (Produce, Fetch, ListOffsets, OffsetCommit), and at the top for the
APIs whose response has a top-level error code. Every fault is logged when injected, applied and
cleared.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable, Iterator

import trio

from protocol.errors import ErrorCode
from protocol.messages import RESPONSES, ApiKey

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _PerPartition:
    """Where an API's request names its topics and partitions, and where its response answers them."""
    request_topics: str
    request_partitions: str
    request_index: str
    response_topics: str
    response_partitions: str
    response_index: str


_PER_PARTITION = {
    ApiKey.PRODUCE: _PerPartition("topic_data", "partition_data", "index", "responses", "partition_responses", "index"),
    ApiKey.FETCH: _PerPartition("topics", "partitions", "partition", "responses", "partitions", "partition_index"),
    ApiKey.LIST_OFFSETS: _PerPartition("topics", "partitions", "partition_index", "topics", "partitions",
                                       "partition_index"),
    ApiKey.OFFSET_COMMIT: _PerPartition("topics", "partitions", "partition_index", "topics", "partitions",
                                        "partition_index"),
}
# The fields naming a topic in the requests' topic entries (Fetch v13+ names it by id only).
_TOPIC_FIELDS = ("name", "topic", "topic_id")
_GROUP_FIELDS = ("group_id", "group", "groups")


@dataclasses.dataclass
class Fault:
    """One injected fault: what it does to the requests it matches, and how many are left."""
    id: int
    api: ApiKey
    remaining: int
    error: ErrorCode | None = None
    delay_ms: int = 0
    drop: bool = False
    close: bool = False
    topic: str | None = None
    partition: int | None = None
    group: str | None = None

    def describe(self) -> str:
        does = [f"answer {self.error.name}"] if self.error is not None else []
        does += [f"delay {self.delay_ms} ms"] if self.delay_ms else []
        does += ["drop"] if self.drop else []
        does += ["close the connection"] if self.close else []
        where = [f"{name} {value}" for name, value in
                 (("topic", self.topic), ("partition", self.partition), ("group", self.group)) if value is not None]
        return (f"fault {self.id}: {', '.join(does)} for the next {self.remaining} {self.api.name} request(s)"
                + (f" naming {', '.join(where)}" if where else ""))


class Faults:
    """The faults in force. Safe to change from another thread than the broker's (an embedded
    broker's caller's)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # (what, topic, partition) paused -> the event its resumption sets; changed on the broker's loop.
        self._paused: dict[tuple[str, str, int], trio.Event] = {}
        self._token: trio.lowlevel.TrioToken | None = None
        self._wake_fetches: Callable[[], None] = lambda: None

    def __bool__(self) -> bool:
        return bool(self._faults)

    def attach(self, wake_fetches: Callable[[], None]) -> None:
        """Called on the broker's loop as it starts serving: pauses are kept there, and a resumed
        fetch wakes the fetches waiting for data."""
        self._token = trio.lowlevel.current_trio_token()
        self._wake_fetches = wake_fetches

    def pause_appends(self, topic: str, partition: int) -> None:
        """Produce requests to the partition wait, until resume_appends or their timeout."""
        self._on_loop(self._pause, "appends", topic, partition)

    def resume_appends(self, topic: str, partition: int) -> None:
        self._on_loop(self._resume, "appends", topic, partition)

    def pause_fetches(self, topic: str, partition: int) -> None:
        """Fetches find no new data in the partition, until resume_fetches."""
        self._on_loop(self._pause, "fetches", topic, partition)

    def resume_fetches(self, topic: str, partition: int) -> None:
        self._on_loop(self._resume, "fetches", topic, partition)

    def paused(self) -> list[tuple[str, str, int]]:
        """(what, topic, partition) of each pause in force."""
        return list(self._paused)

    def appends_paused(self, topic: str, partition: int) -> bool:
        return bool(self._paused) and ("appends", topic, partition) in self._paused

    def fetches_paused(self, topic: str, partition: int) -> bool:
        return bool(self._paused) and ("fetches", topic, partition) in self._paused

    async def appends_resumed(self, topic: str, partition: int) -> None:
        """Returns once the partition's appends are not paused."""
        while (resumed := self._paused.get(("appends", topic, partition))) is not None:
            await resumed.wait()

    def _on_loop(self, change: Callable[..., None], *args) -> None:
        if self._token is None:
            raise RuntimeError("pausing needs a serving broker")
        try:
            on_loop = trio.lowlevel.current_trio_token() is self._token
        except RuntimeError:
            on_loop = False
        if on_loop:
            change(*args)
        else:
            trio.from_thread.run_sync(change, *args, trio_token=self._token)

    def _pause(self, what: str, topic: str, partition: int) -> None:
        if (what, topic, partition) not in self._paused:
            self._paused[what, topic, partition] = trio.Event()
            logger.warning("paused %s of %s-%d", what, topic, partition)

    def _resume(self, what: str, topic: str, partition: int) -> None:
        resumed = self._paused.pop((what, topic, partition), None)
        if resumed is not None:
            resumed.set()
            self._wake_fetches()
            logger.warning("resumed %s of %s-%d", what, topic, partition)

    def inject(self, api: ApiKey | int | str, *, count: int = 1, error: ErrorCode | int | str | None = None,
               delay_ms: int = 0, drop: bool = False, close: bool = False, topic: str | None = None,
               partition: int | None = None, group: str | None = None) -> Fault:
        """Make the next `count` requests of `api` (an ApiKey, its code or its name, "PRODUCE")
        matching `topic` / `partition` / `group` fail so; raises ValueError for a fault that cannot be."""
        api = ApiKey[api.upper()] if isinstance(api, str) else ApiKey(api)
        code = None if error is None else ErrorCode[error.upper()] if isinstance(error, str) else ErrorCode(error)
        if count < 1 or delay_ms < 0:
            raise ValueError("a fault needs a count of at least 1 and a delay of 0 or more")
        if code is None and not (delay_ms or drop or close):
            raise ValueError("a fault answers an error, delays, drops or closes: give at least one")
        if code is not None and api not in _PER_PARTITION and "error_code" not in RESPONSES[api].names:
            raise ValueError(f"{api.name} responses have no error code to inject")
        if partition is not None and topic is None:
            raise ValueError("a partition is a topic's: give the topic too")
        with self._lock:
            fault = Fault(next(self._ids), api, count, code, delay_ms, drop, close, topic, partition, group)
            self._faults.append(fault)
        logger.warning("injected %s", fault.describe())
        return fault

    def list(self) -> list[Fault]:
        with self._lock:
            return [dataclasses.replace(fault) for fault in self._faults]

    def clear(self, fault_id: int | None = None) -> None:
        """Clear one fault, or all of them and every pause."""
        with self._lock:
            cleared = [f for f in self._faults if fault_id is None or f.id == fault_id]
            self._faults = [f for f in self._faults if f not in cleared]
        for fault in cleared:
            logger.warning("cleared %s", fault.describe())
        if fault_id is None and self._token is not None:
            for paused in self.paused():
                self._on_loop(self._resume, *paused)

    def take(self, api_key: int, request) -> Fault | None:
        """The first fault that applies to this request, counted as applied (gone after its last)."""
        with self._lock:
            for fault in self._faults:
                if fault.api == api_key and _names(request, fault):
                    fault.remaining -= 1
                    if not fault.remaining:
                        self._faults.remove(fault)
                    break
            else:
                return None
        logger.warning("applying fault %d to a %s request (%d more)", fault.id, fault.api.name, fault.remaining)
        return fault


def _names(request, fault: Fault) -> bool:
    """Whether the request names the fault's topic (and partition) and group, where it has some."""
    if fault.group is not None and fault.group not in set(_values(request, _GROUP_FIELDS)):
        return False
    if fault.topic is None:
        return True
    for entry in _dicts(request):
        if any(str(entry.get(name)) == fault.topic for name in _TOPIC_FIELDS):
            if fault.partition is None or fault.partition in set(_partitions(entry)):
                return True
    return False


def _dicts(value) -> Iterator[dict]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _dicts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _dicts(item)


def _values(request, names: tuple[str, ...]) -> Iterator[object]:
    """The values of the fields `names` anywhere in the request, a list of names item by item
    (structs in a list are walked by _dicts)."""
    for entry in _dicts(request):
        for name in names:
            found = entry.get(name)
            if isinstance(found, list):
                yield from (item for item in found if not isinstance(item, dict))
            elif found is not None:
                yield found


def _partitions(topic_entry: dict) -> Iterator[int]:
    for value in topic_entry.values():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, int):
                    yield item  # partition_indexes: a list of numbers
                elif isinstance(item, dict):
                    yield from (item[name] for name in ("index", "partition", "partition_index") if name in item)


def error_answer(api_key: int, version: int, request, error: ErrorCode, failed: dict) -> dict | None:
    """The response to `request` failing with `error` everywhere it names a partition (the
    per-partition APIs) or at its top; None when this version has no place for the error."""
    response = RESPONSES[api_key]
    per_partition = _PER_PARTITION.get(api_key)
    if per_partition is not None:
        topics = []
        for topic in request[per_partition.request_topics]:
            named = {name: topic[name] for name in _TOPIC_FIELDS if name in topic}
            topics.append({**named, per_partition.response_partitions: [
                {per_partition.response_index: partition[per_partition.request_index], "error_code": error}
                for partition in topic[per_partition.request_partitions]]})
        return response(**{per_partition.response_topics: topics})
    top = next((f for f in response.fields if f.name == "error_code"), None)
    if top is None or version not in top.versions:
        return None
    return response(**failed, error_code=error)
