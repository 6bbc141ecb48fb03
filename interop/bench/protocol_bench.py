"""Request/response codec costs: the structure work the broker pays per request.

Run from the repository root: ``python -m interop.bench.protocol_bench``. Prints the median of
several timed runs per case. Records payloads are arbitrary bytes here: decoding returns them as
views of the frame, so their size should not show in decode times. Target: a single-partition
Produce request (header + body) costs at most 30 µs of structure work.

"before" rows measure the same declarations without the optimisations (construct's
interpreted parse of our structs, without compiled code or grouped precompiled formats) and a
plain construct ``Struct`` of Produce v7, as architecture.md measured it. The FrameBuffer rows
are the broker's read path without the socket: protocol.framing cutting frames.
"""

from __future__ import annotations

import statistics
import timeit

from construct import GreedyBytes, Int16sb, Int32sb, PascalString, Prefixed, PrefixedArray, Struct

from protocol.framing import FrameBuffer, framed
from protocol.headers import decode_request, decode_request_header, encode_request
from protocol.messages import REQUESTS, RESPONSES, ApiKey
from protocol.primitives import ZERO_UUID, ChunkWriter, FrameReader

REPEATS = 7

# Produce v7 with stock construct types, the baseline architecture.md measured.
PLAIN_CONSTRUCT_PRODUCE_V7 = Struct(
    "transactional_id" / PascalString(Int16sb, "utf8"),
    "acks" / Int16sb,
    "timeout_ms" / Int32sb,
    "topic_data" / PrefixedArray(Int32sb, Struct(
        "name" / PascalString(Int16sb, "utf8"),
        "partition_data" / PrefixedArray(Int32sb, Struct(
            "index" / Int32sb,
            "records" / Prefixed(Int32sb, GreedyBytes),
        )),
    )),
)


def median_seconds(function, number: int) -> float:
    runs = timeit.repeat(function, number=number, repeat=REPEATS)
    return statistics.median(runs) / number


def report(name: str, seconds: float) -> None:
    print(f"{name:<72} {seconds * 1e6:>10.1f} µs")


def produce_request(version: int, records: list[bytes]) -> dict:
    return {"transactional_id": "txn", "acks": -1, "timeout_ms": 30_000, "topic_data": [
        {"name": "bench-topic", "partition_data": [{"index": i, "records": r} for i, r in enumerate(records)]}]}


class FileSlice:
    """Stands in for the log's file slice that encode_chunks leaves to os.sendfile."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def fetch_response(records: list) -> dict:
    return {"throttle_time_ms": 0, "error_code": 0, "session_id": 0, "responses": [{
        "topic": "bench-topic", "partitions": [
            {"partition_index": i, "error_code": 0, "high_watermark": 1_000_000, "last_stable_offset": 1_000_000,
             "log_start_offset": 0, "aborted_transactions": None, "records": r} for i, r in enumerate(records)]}]}


def bench_produce() -> None:
    small_batch = bytes(200)
    for version in (3, 7, 9):
        frame = encode_request(ApiKey.PRODUCE, version, 1, "bench-client", produce_request(version, [small_batch]))
        report(f"decode Produce v{version} request, 1 partition (header + body)",
               median_seconds(lambda: decode_request(frame), 20_000))

    frame = encode_request(ApiKey.PRODUCE, 9, 1, "bench-client", produce_request(9, [small_batch]))
    header, offset = decode_request_header(frame)
    interpreted = REQUESTS[ApiKey.PRODUCE].struct(9)
    report("  before: same, construct's interpreted parse of our struct",
           median_seconds(lambda: (decode_request_header(frame), interpreted.parse_stream(FrameReader(frame, offset))),
                          20_000))
    plain_body = PLAIN_CONSTRUCT_PRODUCE_V7.build(produce_request(7, [small_batch]))
    report("  before: Produce v7 body, plain construct Struct (interpreted)",
           median_seconds(lambda: PLAIN_CONSTRUCT_PRODUCE_V7.parse(plain_body), 5_000))
    plain_compiled = PLAIN_CONSTRUCT_PRODUCE_V7.compile()
    report("  before: Produce v7 body, plain construct Struct (compiled)",
           median_seconds(lambda: plain_compiled.parse(plain_body), 20_000))

    one_mib = bytes(1 << 20)
    frame = encode_request(ApiKey.PRODUCE, 9, 1, "bench-client", produce_request(9, [one_mib]))
    report("decode Produce v9 request, 1 partition, one 1 MiB batch",
           median_seconds(lambda: decode_request(frame), 5_000))
    received = bytearray(frame)
    report("  same, bytearray frame as the broker receives it (read in place)",
           median_seconds(lambda: decode_request(received), 5_000))
    report("  for scale: copying 1 MiB once", median_seconds(lambda: bytes(memoryview(one_mib)), 2_000))
    plain_body = PLAIN_CONSTRUCT_PRODUCE_V7.build(produce_request(7, [one_mib]))
    report("  before: Produce v7 body, 1 MiB, plain construct Struct (compiled)",
           median_seconds(lambda: plain_compiled.parse(plain_body), 500))

    frame = encode_request(ApiKey.PRODUCE, 9, 1, "bench-client", produce_request(9, [small_batch] * 100))
    report("decode Produce v9 request, 100 partitions of one small batch each",
           median_seconds(lambda: decode_request(frame), 2_000))
    frame = encode_request(ApiKey.PRODUCE, 9, 1, "bench-client", produce_request(9, [small_batch * 100]))
    report("decode Produce v9 request, 1 partition carrying 100 small batches",
           median_seconds(lambda: decode_request(frame), 20_000))


def bench_fetch_and_metadata() -> None:
    fetch = {"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52_428_800, "isolation_level": 1,
             "session_id": 0, "session_epoch": -1, "topics": [{"topic": "bench-topic", "partitions": [
                 {"partition": i, "current_leader_epoch": -1, "fetch_offset": 12345, "log_start_offset": -1,
                  "partition_max_bytes": 1_048_576} for i in range(10)]}],
             "forgotten_topics_data": [], "rack_id": ""}
    for version in (4, 11, 12):
        frame = encode_request(ApiKey.FETCH, version, 1, "bench-client", fetch)
        report(f"decode Fetch v{version} request, 10 partitions",
               median_seconds(lambda: decode_request(frame), 10_000))
    for version, topics in ((1, None), (9, [{"name": "a"}, {"name": "b"}, {"name": "c"}]),
                            (12, [{"name": "a"}, {"name": "b"}, {"name": "c"}])):
        frame = encode_request(ApiKey.METADATA, version, 1, "bench-client", {"topics": topics})
        report(f"decode Metadata v{version} request, {len(topics or ())} topics",
               median_seconds(lambda: decode_request(frame), 20_000))


def bench_metadata_response() -> None:
    topics = [{"error_code": 0, "name": f"topic-{t}", "topic_id": None, "is_internal": False, "partitions": [
        {"error_code": 0, "partition_index": p, "leader_id": 1, "leader_epoch": 0, "replica_nodes": [1],
         "isr_nodes": [1], "offline_replicas": []} for p in range(10)]} for t in range(100)]
    response = {"throttle_time_ms": 0, "brokers": [{"node_id": 1, "host": "localhost", "port": 9092, "rack": None}],
                "cluster_id": "bench", "controller_id": 1, "topics": topics}
    for version in (1, 12):
        if version >= 10:
            response["topics"] = [{**topic, "topic_id": ZERO_UUID} for topic in topics]
        report(f"encode Metadata v{version} response, 100 topics x 10 partitions",
               median_seconds(lambda: RESPONSES[ApiKey.METADATA].encode(version, response), 200))


def bench_fetch_response() -> None:
    codec = RESPONSES[ApiKey.FETCH]
    payloads = [bytes(100 * 1024)] * 10
    slices = [FileSlice(100 * 1024)] * 10
    for version in (11, 12):
        response = fetch_response(payloads)
        report(f"encode Fetch v{version} response, 10 partitions x 100 KiB bytes",
               median_seconds(lambda: codec.encode(version, response), 500))
        response = fetch_response(slices)
        report(f"encode_chunks Fetch v{version} response, 10 partitions x file slice",
               median_seconds(lambda: codec.encode_chunks(version, response), 10_000))
    interpreted = codec.struct(12)
    response = fetch_response(slices)
    report("  before: encode_chunks v12, construct's interpreted build of our struct",
           median_seconds(lambda: interpreted._build(response, ChunkWriter(), None, ""), 2_000))


def bench_framing() -> None:
    frames = FrameBuffer()
    small = memoryview(framed(encode_request(ApiKey.PRODUCE, 9, 1, "bench-client", produce_request(9, [bytes(200)]))))
    report("FrameBuffer: a 300 B Produce frame in (copied, as by the kernel) and out",
           median_seconds(lambda: frames.receive_data(small, 64 * 1024), 100_000))
    large = memoryview(framed(bytes(1 << 20)))
    report("FrameBuffer: a 1 MiB frame received in place, 64 KiB per read",
           median_seconds(lambda: frames.receive_data(large, 64 * 1024), 500))


def main() -> None:
    bench_framing()
    bench_produce()
    bench_fetch_and_metadata()
    bench_metadata_response()
    bench_fetch_response()


if __name__ == "__main__":
    main()
