"""Faults injected on purpose, for testing clients' retry and error paths (franz-go's kfake has
the idea; this is the Python broker's): the next N requests of an API, optionally only those naming
a topic, partition or group, are answered with an error code, delayed, dropped without an answer,
or have their connection closed; and a partition's appends or fetches are paused until resumed
(a paused append waits, up to its request's timeout; a paused fetch finds no new data).

An error answer is built from the request, without running the handler (a Produce answered
NOT_LEADER_OR_FOLLOWER appends nothing, as on Kafka), as Kafka's getErrorResponse builds it: the
error goes in each partition, topic, resource or group the request names where the response
answers them one by one, and at the top where the response has a top-level error code. Every
fault is logged when injected, applied and cleared.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import trio

from protocol.errors import ErrorCode
from protocol.messages import RESPONSES, ApiKey
from protocol.schema import Versions

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Entries:
    """A list of the request answered entry by entry in its error answer, as Kafka's
    getErrorResponse answers it: the request's list field and the response's, the request fields
    copied into each answer (request name -> response name; "" is the entry itself, in a list of
    names or numbers), the fields Kafka sets beside them (also what a null copied value becomes),
    and the lists answered in each entry in turn. The error goes in the entries that nest none,
    under `error`. `versions` narrows the request versions answered so; `distinct` makes the
    response list one answer per distinct copied value, sorted (Kafka answers a set of names).
    At the top of a request (request and response ""), the error goes at the response's top."""
    request: str
    response: str
    copied: Mapping[str, str] = dataclasses.field(default_factory=dict)
    failed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    nested: tuple[_Entries, ...] = ()
    error: str = "error_code"
    versions: Versions | None = None
    distinct: bool = False


def _top(*lists: _Entries, **options) -> _Entries:
    return _Entries("", "", nested=lists, **options)


_TOPIC_NAME = {"name": "name"}
_PARTITION_INDEX = {"partition_index": "partition_index"}
_RESOURCE = {"resource_type": "resource_type", "resource_name": "resource_name"}
# Kafka's message is the exception's, null for an error with nothing to say beyond its code.
# (FindCoordinator v1+ and DescribeConfigs answer the error's default text instead, which this
# broker does not keep: null there.)
_NO_MESSAGE = {"error_message": None}
# Kafka's Node.noNode(): where a failed answer names no node (FindCoordinator's handler too).
NO_NODE = {"node_id": -1, "host": "", "port": -1}

# The APIs whose error answers are per partition (Faults.inject takes an error for them, and for
# the APIs with a top-level error code), then the others whose responses carry their errors per
# entry; one walk reads both. An API in neither, or a version whose request has none of the lists,
# has the error at the top only.
_PER_PARTITION: dict[ApiKey, _Entries] = {
    ApiKey.PRODUCE: _top(_Entries("topic_data", "responses", _TOPIC_NAME, nested=(
        _Entries("partition_data", "partition_responses", {"index": "index"},
                 {"base_offset": -1, "log_append_time_ms": -1, "log_start_offset": -1}),))),
    # From v13 Kafka answers at the top only, with no partitions.
    ApiKey.FETCH: _top(_Entries("topics", "responses", {"topic": "topic", "topic_id": "topic_id"}, nested=(
        _Entries("partitions", "partitions", {"partition": "partition_index"}, {"high_watermark": -1}),),
        versions=Versions(0, 12)), copied={"session_id": "session_id"}),
    ApiKey.LIST_OFFSETS: _top(_Entries("topics", "topics", _TOPIC_NAME, nested=(
        _Entries("partitions", "partitions", _PARTITION_INDEX),))),
    ApiKey.OFFSET_COMMIT: _top(_Entries("topics", "topics", _TOPIC_NAME, nested=(
        _Entries("partitions", "partitions", _PARTITION_INDEX),))),
    # v0-1 per partition, v2-7 at the top only, v8+ per group (with no partitions).
    ApiKey.OFFSET_FETCH: _top(
        _Entries("topics", "topics", _TOPIC_NAME, nested=(
            _Entries("partition_indexes", "partitions", {"": "partition_index"},
                     {"committed_offset": -1, "committed_leader_epoch": -1, "metadata": ""}),),
            versions=Versions(0, 1)),
        _Entries("groups", "groups", {"group_id": "group_id"})),
    ApiKey.DELETE_RECORDS: _top(_Entries("topics", "topics", _TOPIC_NAME, nested=(
        _Entries("partitions", "partitions", _PARTITION_INDEX, {"low_watermark": -1}),))),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: _top(_Entries("topics", "topics", {"topic": "topic"}, nested=(
        _Entries("partitions", "partitions", {"partition": "partition"}),))),
    # v4+ (which brokers send) at the top only.
    ApiKey.ADD_PARTITIONS_TO_TXN: _top(_Entries(
        "v3_and_below_topics", "results_by_topic_v3_and_below", _TOPIC_NAME, nested=(
            _Entries("partitions", "results_by_partition", {"": "partition_index"}, error="partition_error_code"),))),
    ApiKey.TXN_OFFSET_COMMIT: _top(_Entries("topics", "topics", _TOPIC_NAME, nested=(
        _Entries("partitions", "partitions", _PARTITION_INDEX),))),
    ApiKey.DESCRIBE_PRODUCERS: _top(_Entries("topics", "topics", _TOPIC_NAME, nested=(
        _Entries("partition_indexes", "partitions", {"": "partition_index"}),))),
}
_PER_ENTRY: dict[ApiKey, _Entries] = {
    # The response allows no null name before v12: Kafka answers "" for a topic named by id only.
    ApiKey.METADATA: _top(_Entries("topics", "topics", {"name": "name", "topic_id": "topic_id"}, {"name": ""})),
    # v0-3 at the top only.
    ApiKey.FIND_COORDINATOR: _top(_Entries("coordinator_keys", "coordinators", {"": "key"},
                                           {**NO_NODE, **_NO_MESSAGE}), failed=NO_NODE),
    # No protocol: null from v7 (before, it allows no null: "").
    ApiKey.JOIN_GROUP: _top(failed={"protocol_name": None}),
    ApiKey.SASL_AUTHENTICATE: _top(failed=_NO_MESSAGE),
    ApiKey.DESCRIBE_ACLS: _top(failed=_NO_MESSAGE),
    ApiKey.DESCRIBE_GROUPS: _top(_Entries("groups", "groups", {"": "group_id"})),
    ApiKey.CREATE_TOPICS: _top(_Entries("topics", "topics", _TOPIC_NAME, _NO_MESSAGE)),
    # By name before v6, by name or id from v6.
    ApiKey.DELETE_TOPICS: _top(_Entries("topic_names", "responses", {"": "name"}),
                               _Entries("topics", "responses", {"name": "name", "topic_id": "topic_id"})),
    ApiKey.CREATE_ACLS: _top(_Entries("creations", "results", failed=_NO_MESSAGE)),
    ApiKey.DELETE_ACLS: _top(_Entries("filters", "filter_results", failed=_NO_MESSAGE)),
    ApiKey.DESCRIBE_CONFIGS: _top(_Entries("resources", "results", _RESOURCE, _NO_MESSAGE)),
    ApiKey.ALTER_CONFIGS: _top(_Entries("resources", "responses", _RESOURCE, _NO_MESSAGE)),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: _top(_Entries("resources", "responses", _RESOURCE, _NO_MESSAGE)),
    ApiKey.CREATE_PARTITIONS: _top(_Entries("topics", "results", _TOPIC_NAME, _NO_MESSAGE)),
    ApiKey.DELETE_GROUPS: _top(_Entries("groups_names", "results", {"": "group_id"})),
    # Beside the error at the top; Kafka names no user in these results.
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: _top(_Entries("users", "results", failed=_NO_MESSAGE), failed=_NO_MESSAGE),
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: _top(
        _Entries("deletions", "results", {"name": "user"}, _NO_MESSAGE, distinct=True),
        _Entries("upsertions", "results", {"name": "user"}, _NO_MESSAGE, distinct=True)),
    ApiKey.DESCRIBE_TRANSACTIONS: _top(_Entries("transactional_ids", "transaction_states",
                                                {"": "transactional_id"})),
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
    """The response to `request` failing with `error`, as Kafka's getErrorResponse builds it: the
    error in each entry of the request's lists that the response answers one by one (the
    _PER_PARTITION and _PER_ENTRY tables), and at its top; None when this version has no place
    for the error, or no response (a Produce with acks 0)."""
    if api_key == ApiKey.PRODUCE and request["acks"] == 0:
        return None
    response = RESPONSES[api_key]
    top = _PER_PARTITION.get(api_key) or _PER_ENTRY.get(api_key) or _top()
    at_top = {"error_code": error} if any(f.name == "error_code" and version in f.versions
                                          for f in response.fields) else {}
    if not at_top and not any(_answers(entries, request, version) for entries in top.nested):
        return None
    answer = {**failed, **_answer(top, request, version, error), **at_top}
    # A null this version allows none of is the field's default, as Kafka's responses write it.
    not_nullable = {f.name for f in response.fields if f.nullable is None or version not in f.nullable}
    return response(**{name: value for name, value in answer.items() if value is not None or name not in not_nullable})


def _answers(entries: _Entries, item: Mapping, version: int) -> bool:
    """Whether the request (or its entry) `item` has the list `entries` answers, at this version."""
    return entries.request in item and (entries.versions is None or version in entries.versions)


def _answer(entries: _Entries, item, version: int, error: ErrorCode) -> dict:
    """The answer to one entry of a request's list (to the request itself at the top, but its error)."""
    answer = dict(entries.failed)
    for name, answered_as in entries.copied.items():
        if not name:
            answer[answered_as] = item
        elif name in item and (item[name] is not None or answered_as not in entries.failed):
            answer[answered_as] = item[name]  # a field of this version, and not a null Kafka replaces
    for nested in entries.nested:
        if _answers(nested, item, version):
            answers = answer.setdefault(nested.response, [])
            answers += (_answer(nested, entry, version, error) for entry in item[nested.request] or ())
            if nested.distinct:
                by_key = {tuple(entry[field] for field in nested.copied.values()): entry for entry in answers}
                answer[nested.response] = [by_key[key] for key in sorted(by_key)]
    if entries.request and not entries.nested:
        answer[entries.error] = error
    return answer
