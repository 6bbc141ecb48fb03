"""A broker inside the caller's process, for test suites and tools: started from synchronous,
asyncio or trio code, on a free port and a temporary data directory by default.

    from broker.embedded import EmbeddedBroker

    with EmbeddedBroker() as broker:                  # synchronous code
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})

    async with EmbeddedBroker() as broker:            # asyncio or trio code
        ...

Synchronous and asyncio callers get the broker in a background thread running its own trio loop;
a trio caller gets it as a task of its own run. Signals are never touched: stopping the broker is
the caller's business (leaving the `with` block, or `stop()`). Settings are BrokerConfig's fields
(`num_partitions=3`, `retention_ms=60_000`, ...).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
from pathlib import Path

import sniffio
import trio

from broker.config import BrokerConfig
from broker.faults import Faults
from broker.server import Broker


class EmbeddedBroker:
    """One broker, started at most once; its temporary data directory is removed when it stops,
    unless `keep_data` (a `data_dir` given by the caller is always kept)."""

    def __init__(self, *, data_dir: Path | str | None = None, keep_data: bool = False, **settings) -> None:
        self._temporary = data_dir is None
        directory = Path(tempfile.mkdtemp(prefix="comlog-")) if data_dir is None else Path(data_dir)
        self.config = dataclasses.replace(BrokerConfig(port=0), data_dir=directory, **settings)
        self._keep_data = keep_data or not self._temporary
        self._broker: Broker | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._failure: BaseException | None = None
        self._ready = threading.Event()

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def port(self) -> int:
        if self._broker is None:
            raise RuntimeError("the broker is not started")
        return self._broker.port

    @property
    def faults(self) -> Faults:
        """The broker's injected faults (broker.faults.Faults): `faults.inject(...)`, `list()`,
        `clear()`, from any thread."""
        if self._broker is None:
            raise RuntimeError("the broker is not started")
        return self._broker.faults

    @property
    def bootstrap_servers(self) -> str:
        """host:port, for a client's bootstrap.servers."""
        host, port = self._broker.advertised_address if self._broker else (None, None)
        if port is None:
            raise RuntimeError("the broker is not started")
        return f"{host}:{port}"

    # -- from synchronous code: a thread of its own --------------------------------------------

    def start(self) -> EmbeddedBroker:
        """Start the broker in a background thread; returns once it accepts connections, or raises
        why it could not start."""
        if self._thread is not None or self._broker is not None:
            raise RuntimeError("an EmbeddedBroker starts once")
        self._thread = threading.Thread(target=self._run_thread, name=f"comlog-broker {self.data_dir}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            self._remove_data()
            raise self._failure
        return self

    def stop(self) -> None:
        """Stop the broker (requests in flight finish, the logs close cleanly) and wait for it;
        then remove its temporary data. Raises what stopped it, if it failed."""
        if self._thread is None:
            raise RuntimeError("stop() stops a broker start() started")
        if self._thread.is_alive():
            try:
                trio.from_thread.run_sync(self._broker.stop, trio_token=self._token)
            except trio.RunFinishedError:
                pass  # it stopped on its own, failing: the failure is raised below
            self._thread.join()
        self._remove_data()
        if self._failure is not None:
            raise self._failure

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _run_thread(self) -> None:
        try:
            trio.run(self._serve, self._started_in_thread)
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits for it
            self._failure = exc
        finally:
            self._ready.set()

    def _started_in_thread(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._ready.set()

    # -- from async code --------------------------------------------------------------------------

    async def __aenter__(self) -> EmbeddedBroker:
        if sniffio.current_async_library() != "trio":
            import asyncio
            await asyncio.to_thread(self.start)
            return self
        if self._broker is not None:
            raise RuntimeError("an EmbeddedBroker starts once")
        # A trio caller: the broker runs in a nursery of this context's own.
        self._nursery_manager = trio.open_nursery()
        nursery = await self._nursery_manager.__aenter__()
        try:
            await nursery.start(self._serve_task)
        except BaseException as exc:
            await self._nursery_manager.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(self, exc_type, exc, traceback) -> bool | None:
        if sniffio.current_async_library() != "trio":
            import asyncio
            await asyncio.to_thread(self.stop)
            return None
        self._broker.stop()
        try:
            return await self._nursery_manager.__aexit__(exc_type, exc, traceback)
        finally:
            self._remove_data()

    async def _serve_task(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await self._serve(task_status.started)

    # -- both ---------------------------------------------------------------------------------------

    async def _serve(self, started) -> None:
        async with Broker(self.config) as broker:
            self._broker = broker
            async with trio.open_nursery() as nursery:
                await nursery.start(broker.serve)
                started()

    def _remove_data(self) -> None:
        if not self._keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
