"""The control interface of a broker process (`--control-port`): what an embedded broker's
`faults` do (broker.faults), for a broker running as `python -m broker`.

One JSON object per line each way, on loopback only:

    {"op": "inject", "api": "PRODUCE", "count": 3, "error": "NOT_LEADER_OR_FOLLOWER", "topic": "t"}
    {"op": "list"}                              -> {"ok": true, "faults": [...], "paused": [...]}
    {"op": "clear"} / {"op": "clear", "id": 2}
    {"op": "pause", "what": "appends", "topic": "t", "partition": 0}   ("fetches"; "resume")

Each answer is {"ok": true, ...} or {"ok": false, "error": "why"}. `ControlClient` speaks it with
the same methods as `Faults`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket

import trio

from broker.faults import Fault, Faults

logger = logging.getLogger(__name__)

# A command line longer than this closes the connection: commands are a few hundred bytes.
_MAX_LINE_BYTES = 64 * 1024


def fault_json(fault: Fault) -> dict:
    fields = dataclasses.asdict(fault)
    fields["api"] = fault.api.name
    fields["error"] = None if fault.error is None else fault.error.name
    return fields


def _answer(faults: Faults, command: dict) -> dict:
    op = command.pop("op", None)
    if op == "inject":
        return {"fault": fault_json(faults.inject(command.pop("api"), **command))}
    if op == "list":
        return {"faults": [fault_json(f) for f in faults.list()], "paused": [list(p) for p in faults.paused()]}
    if op == "clear":
        faults.clear(command.get("id"))
        return {}
    if op in ("pause", "resume") and command.get("what") in ("appends", "fetches"):
        getattr(faults, f"{op}_{command['what']}")(command["topic"], command["partition"])
        return {}
    raise ValueError(f"unknown command {op!r}: inject, list, clear, pause or resume")


async def serve_control(listener: trio.SocketListener, faults: Faults) -> None:
    """Answer control connections until cancelled."""
    async with trio.open_nursery() as connections:
        while True:
            stream = await listener.accept()
            connections.start_soon(_serve_one, stream, faults)


async def _serve_one(stream: trio.SocketStream, faults: Faults) -> None:
    async with stream:
        pending = b""
        try:
            while True:
                data = await stream.receive_some()
                if not data:
                    return
                pending += data
                if len(pending) > _MAX_LINE_BYTES and b"\n" not in pending:
                    logger.warning("control: a command over %d bytes: closing its connection", _MAX_LINE_BYTES)
                    return
                *lines, pending = pending.split(b"\n")
                for line in filter(None, (line.strip() for line in lines)):
                    try:
                        command = json.loads(line)
                        if not isinstance(command, dict):
                            raise ValueError("a command is a JSON object")
                        answer = {"ok": True, **_answer(faults, command)}
                    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    await stream.send_all(json.dumps(answer).encode() + b"\n")
        except trio.BrokenResourceError:
            return


class ControlError(Exception):
    """A command the broker refused, with its reason."""


class ControlClient:
    """A broker process's faults, through its control interface; the methods of broker.faults.Faults."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)

    def _command(self, **command) -> dict:
        with socket.create_connection(self._address, timeout=30) as connection:
            connection.sendall(json.dumps(command).encode() + b"\n")
            answer = connection.makefile("rb").readline()
        if not answer:
            raise ConnectionError("the broker closed the control connection")
        result = json.loads(answer)
        if not result.pop("ok"):
            raise ControlError(result["error"])
        return result

    def inject(self, api: str, **fault) -> dict:
        return self._command(op="inject", api=api, **fault)["fault"]

    def list(self) -> list[dict]:
        return self._command(op="list")["faults"]

    def paused(self) -> list[tuple[str, str, int]]:
        return [tuple(paused) for paused in self._command(op="list")["paused"]]

    def clear(self, fault_id: int | None = None) -> None:
        self._command(op="clear", id=fault_id)

    def pause_appends(self, topic: str, partition: int) -> None:
        self._command(op="pause", what="appends", topic=topic, partition=partition)

    def resume_appends(self, topic: str, partition: int) -> None:
        self._command(op="resume", what="appends", topic=topic, partition=partition)

    def pause_fetches(self, topic: str, partition: int) -> None:
        self._command(op="pause", what="fetches", topic=topic, partition=partition)

    def resume_fetches(self, topic: str, partition: int) -> None:
        self._command(op="resume", what="fetches", topic=topic, partition=partition)
