"""The handler registry: each API's handler, the versions it serves, and the request/response plumbing."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

import trio

from broker.faults import Fault, Faults, error_answer
from protocol import headers, messages
from protocol.messages import ApiKey
from protocol.errors import ApiError, ErrorCode
from protocol.primitives import open_frame
from protocol.schema import Constructor, MessageCodec

if TYPE_CHECKING:
    from broker.acls import Authorizer
    from broker.config import BrokerConfig
    from broker.dynamic_config import DynamicBrokerConfigs
    from broker.fetch_sessions import FetchSessions
    from broker.groups import GroupCoordinator
    from broker.metadata import ProducerIdAllocator
    from broker.registry import Partition
    from broker.request_trace import RequestTrace
    from broker.scram import ScramCredentials
    from broker.topics import Topics
    from broker.transactions import TransactionCoordinator

logger = logging.getLogger(__name__)


class Services(Protocol):
    """What handlers may use of the broker: the services, the configuration and the clock. The
    Broker is one; a test can hand a handler any other."""

    config: BrokerConfig
    topics: Topics
    coordinator: GroupCoordinator
    transactions: TransactionCoordinator
    producer_ids: ProducerIdAllocator
    # None without --authorizer-class-name.
    authorizer: Authorizer | None
    dynamic_config: DynamicBrokerConfigs
    # Faults injected on purpose (broker.faults), empty unless a test injects some.
    faults: Faults
    # The request trace, None without --trace.
    trace: RequestTrace | None
    scram_credentials: ScramCredentials
    fetch_sessions: FetchSessions
    cluster_id: str
    advertised_address: tuple[str, int]
    stopping: trio.Event

    def clock(self) -> int:
        """Wall-clock milliseconds."""

    def appended(self, partition: Partition) -> None:
        """Wakes the fetches waiting for data; the partition's fetch sessions read it next."""

    def partition_changed(self, partition: Partition) -> None:
        """Its log start offset moved, or it is gone: its fetch sessions read it next."""

    async def wait_for_appends(self) -> None:
        """Returns after the next append to any partition."""


class CloseConnection(Exception):
    """The request cannot be answered: the connection is closed, with this reason logged."""


class UnsupportedRequest(CloseConnection):
    """A request this broker cannot answer (unknown API key, or a version outside its range)."""


@dataclasses.dataclass(frozen=True)
class Api:
    api_key: int
    handle: Callable[..., Awaitable[dict | None]]
    min_version: int
    max_version: int
    # Fields a failed request answers with beside its error, where Kafka's differ from the defaults.
    failed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def request(self):
        return messages.REQUESTS[self.api_key]

    @property
    def response(self):
        return messages.RESPONSES[self.api_key]

    async def respond(self, broker, header, frame: bytes | bytearray, body_offset: int) -> list | None:
        """Decode the body, run the handler, and encode header + response as chunks (None: no response)."""
        if not self.min_version <= header.request_api_version <= self.max_version:
            raise UnsupportedRequest(
                f"{self.request.name} v{header.request_api_version} is outside the supported "
                f"v{self.min_version}-v{self.max_version}")
        # Like Kafka, ignore bytes after the message: librdkafka 2.x sends 3 of them after some
        # Metadata v12 requests, and a real broker answers those.
        request = self.request.read(header.request_api_version, open_frame(frame, body_offset))
        trace = broker.trace
        started = time.perf_counter() if trace is not None else 0.0
        fault = broker.faults.take(self.api_key, request) if broker.faults else None
        try:
            if fault is None or (response := await self._faulty(fault, header, request)) is _NOT_FAULTED:
                response = await self.handle(broker, header, request)
        except ApiError as exc:
            response = error_response(self.response, exc, self.failed)
        if trace is not None:
            trace.record(header, request, response, time.perf_counter() - started)
        if response is None:
            return None
        return [headers.encode_response_header(header.request_api_key, header.request_api_version, header.correlation_id),
                *self.response.encode_chunks(header.request_api_version, response)]


    async def _faulty(self, fault: Fault, header, request):
        """What an injected fault makes of the request: its answer (None: none), or _NOT_FAULTED
        for the handler's (after the fault's delay)."""
        if fault.delay_ms:
            await trio.sleep(fault.delay_ms / 1000)
        if fault.close:
            raise CloseConnection(f"injected fault {fault.id}: closing the connection")
        if fault.drop:
            return None
        if fault.error is None:
            return _NOT_FAULTED
        answer = error_answer(self.api_key, header.request_api_version, request, fault.error, self.failed)
        if answer is None:
            logger.warning("fault %d: %s v%d has no error code to answer with: answered as usual",
                           fault.id, self.request.name, header.request_api_version)
            return _NOT_FAULTED
        return answer


_NOT_FAULTED = object()


def error_fields(codec_or_struct, exc: ApiError) -> dict:
    """The fields that carry `exc` in a struct declaring `error_code` (and maybe `error_message`)."""
    names = codec_or_struct.names
    fields = {"error_code": exc.code}
    if "error_message" in names:
        fields["error_message"] = exc.message
    return fields


def error_response(codec: MessageCodec, exc: ApiError, failed: Mapping[str, Any] = {}) -> dict:
    """The whole request failed: its response with the error at the top, the rest defaulted. A
    response without a top-level error code cannot say it: a handler raising there is a bug."""
    if "error_code" not in codec.names:
        raise TypeError(f"{codec.name} has no top-level error_code for {exc.code.name}") from exc
    return codec(**failed, **error_fields(codec, exc))


HANDLERS: dict[int, Api] = {}


def handles(api_key: ApiKey, min_version: int | None = None, max_version: int | None = None, cls=Api,
            failed: Mapping[str, Any] = {}):
    """Register a handler for `api_key` over the codec's versions, optionally narrowed; `failed`
    holds the fields its response carries beside an error the handler raises."""
    def register(handle):
        low, high = messages.REQUESTS[api_key].valid_versions
        HANDLERS[api_key] = cls(api_key, handle,
                                low if min_version is None else max(low, min_version),
                                high if max_version is None else min(high, max_version), failed)
        return handle
    return register


async def answer_each_partition(broker: Services, request_topics, topic_result: Constructor,
                                partition_result: Constructor, answer, *, failed: Mapping[str, Any] = {},
                                topic_field: str = "name", partition_field: str = "partition_index",
                                partitions_field: str = "partitions", denied: Collection[str] = ()) -> list[dict]:
    """The topics -> partitions answer of requests that name partitions (ListOffsets, DeleteRecords,
    OffsetForLeaderEpoch, DescribeProducers): `await answer(partition, wanted)` gives a partition's
    result fields, or raises ApiError, which becomes the partition's error, with the `failed` fields
    beside it. A request listing bare indexes (DescribeProducers' partition_indexes) names that list
    as partitions_field; `wanted` is then the index. The partitions of the `denied` topics are
    answered TOPIC_AUTHORIZATION_FAILED, before whether they exist is looked at (as Kafka does)."""
    topics = []
    for topic in request_topics:
        name = topic[topic_field]
        partitions = []
        for wanted in topic[partitions_field]:
            index = wanted if isinstance(wanted, int) else wanted[partition_field]
            try:
                if name in denied:
                    raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                partition = broker.topics.partition(name, index)
                if partition is None:
                    raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                fields = await answer(partition, wanted)
            except ApiError as exc:
                fields = {**failed, **error_fields(partition_result, exc)}
            partitions.append(partition_result(**{partition_field: index}, **fields))
        topics.append(topic_result(**{topic_field: name}, partitions=partitions))
    return topics
