"""The request trace (`--trace FILE`): one JSON line per request and its response, for seeing what
a client sent and what it was told.

Each line: the time (`ts`, wall-clock ms), the connection (`connection`, the client's host:port),
the client id and the software name and version its ApiVersions request gave (`client`,
`software`), the API and version, the correlation id, the request's and the response's decoded
fields, the error codes anywhere in the response (`errors`, by name) and the time the handler took
(`ms`). Record data is summarised (batches, records, bytes, offsets), never written, and so is
every other bytes field (its length): no payload or credential reaches the trace.

Lines are written by a task of their own, in a worker thread: tracing never writes on the event
loop, and with no trace the broker's only cost is one check per request.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import trio

from broker.storage_work import run_storage_work
from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import REQUESTS, ApiKey
from protocol.record_batch import parse_header

logger = logging.getLogger(__name__)

# The connection a request came on (host:port of the client), set by the task serving it.
CURRENT_CONNECTION: contextvars.ContextVar[str] = contextvars.ContextVar("current_connection", default="-")
# Lines written at once: a burst of requests is written in a few writes, not one per line.
_BATCH_LINES = 1000


def summarised(value: object, name: str = "") -> object:
    """A decoded message (or part of one) as JSON values: bytes summarised, never written."""
    if isinstance(value, dict):
        return {key: summarised(item, key) for key, item in value.items() if not key.startswith("_")}
    if isinstance(value, (list, tuple)):
        return [summarised(item, name) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _records_summary(memoryview(value)) if name == "records" else {"bytes": len(value)}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "__len__"):  # a slice of a log file, sent with sendfile: only its size is known
        return {"bytes": len(value)}
    return str(value)


def _records_summary(data: memoryview) -> dict:
    summary = {"bytes": len(data), "batches": 0, "records": 0}
    position = 0
    try:
        while position < len(data):
            header = parse_header(data, position)
            if summary["batches"] == 0:
                summary["base_offset"] = header.base_offset
            summary["last_offset"] = header.last_offset
            summary["batches"] += 1
            summary["records"] += header.records_count
            position += header.size
    except ProtocolError:
        summary["unparsed_bytes"] = len(data) - position  # a legacy message set, or a cut batch
    return summary


def error_names(value: object) -> list[str]:
    """The names of the error codes (but NONE) anywhere in a decoded response, each once."""
    found: set[int] = set()

    def walk(item: object) -> None:
        if isinstance(item, dict):
            for key, field in item.items():
                if key == "error_code" and isinstance(field, int) and field:
                    found.add(field)
                else:
                    walk(field)
        elif isinstance(item, (list, tuple)):
            for element in item:
                walk(element)

    walk(value)
    return [_error_name(code) for code in sorted(found)]


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


class RequestTrace:
    """The trace file's writer: `record` queues a line, `run` writes queued lines in a worker thread."""

    def __init__(self, path: Path, clock: Callable[[], int]) -> None:
        """Opens the file (blocks: at start): a path that cannot be written stops the start."""
        self.path = path
        self._file = open(path, "a", encoding="utf-8")
        self._clock = clock
        self._send, self._receive = trio.open_memory_channel[str](math.inf)
        # Per connection, the client software its ApiVersions request named.
        self._software: dict[str, str] = {}

    def record(self, header, request, response, seconds: float) -> None:
        connection = CURRENT_CONNECTION.get()
        if header.request_api_key == ApiKey.API_VERSIONS and request.get("client_software_name"):
            self._software[connection] = f"{request.client_software_name} {request.client_software_version}"
        line = {
            "ts": self._clock(), "connection": connection, "client": header.get("client_id"),
            "software": self._software.get(connection), "api": REQUESTS[header.request_api_key].name.removesuffix("Request"),
            "version": header.request_api_version, "correlation_id": header.correlation_id,
            "ms": round(seconds * 1000, 3), "errors": error_names(response) if response is not None else [],
            "request": summarised(request), "response": summarised(response) if response is not None else None,
        }
        self._send.send_nowait(json.dumps(line, separators=(",", ":")))

    def close(self) -> None:
        """Close the file, if run() has not (a broker opened and never served)."""
        self._file.close()

    def connection_closed(self, connection: str) -> None:
        self._software.pop(connection, None)

    async def run(self) -> None:
        """Write lines as they come, until cancelled; then the ones still queued."""
        with self._file as file:
            try:
                while True:
                    lines = [await self._receive.receive()]
                    await run_storage_work(_write, file, self._queued(lines))
            finally:
                with trio.CancelScope(shield=True):
                    await run_storage_work(_write, file, self._queued([]))

    def _queued(self, lines: list[str]) -> list[str]:
        """`lines` and those queued behind them, up to _BATCH_LINES."""
        while len(lines) < _BATCH_LINES:
            try:
                lines.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        return lines


def _write(file, lines: list[str]) -> None:
    file.write("".join(line + "\n" for line in lines))
    file.flush()


def main(argv: list[str] | None = None) -> int:
    """`python -m broker.request_trace FILE`: a trace as a table, filtered by API, client or error."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m broker.request_trace", description=main.__doc__)
    parser.add_argument("file", type=Path, help="a trace file written by --trace")
    parser.add_argument("--api", action="append", help="only this API (Produce, Fetch, ...); repeatable")
    parser.add_argument("--client", help="only requests whose client id or software contains this")
    parser.add_argument("--errors", action="store_true", help="only requests answered with an error")
    args = parser.parse_args(argv)
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        parser.error(f"cannot read {args.file}: {exc.strerror or exc}")
    rows = [("time", "connection", "client", "api", "corr", "ms", "errors")]
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            parser.error(f"{args.file}:{number}: not a trace line")
        client = entry.get("client") or ""
        if args.api and entry["api"] not in args.api:
            continue
        if args.client and args.client not in client and args.client not in (entry.get("software") or ""):
            continue
        if args.errors and not entry["errors"]:
            continue
        when = time.strftime("%H:%M:%S", time.localtime(entry["ts"] / 1000)) + f".{entry['ts'] % 1000:03d}"
        rows.append((when, entry["connection"], client, f"{entry['api']} v{entry['version']}",
                     str(entry["correlation_id"]), f"{entry['ms']:.3f}", ",".join(entry["errors"])))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
