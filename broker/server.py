"""The broker process: listener, connections, request dispatch, background maintenance, shutdown."""

from __future__ import annotations

import logging
import math
import signal
import struct
import sys
import time

import trio

from broker import handlers
from broker.handlers.base import CloseConnection, UnsupportedRequest
from broker.config import BrokerConfig
from broker.data_dir_lock import DataDirLock
from broker.connection import (Connection, ConnectionClosed, ConnectionLimits, FrameTooLarge, ReadInterrupted,
                               RequestBudget, default_max_connections)
from broker.groups import GroupCoordinator
from broker.loop_monitor import CURRENT_REQUEST, LoopMonitor
from broker.metadata import ProducerIdAllocator, load_cluster_id
from broker.registry import TopicRegistry
from log import UNLIMITED
from protocol import headers
from protocol.errors import ProtocolError

logger = logging.getLogger("broker")

_SIZE = struct.Struct(">i")
# In-flight requests get this long to finish after SIGTERM before their connections are cut.
SHUTDOWN_GRACE_SECONDS = 30
# Idle connections are looked for this many times per connections.max.idle.ms, so one is closed
# at most a tenth of that period late.
IDLE_CHECKS_PER_PERIOD = 10
# After a failed accept (out of descriptors, most often) the listener waits this long, doubling
# up to the maximum while accepting keeps failing, instead of spinning on a ready listener.
ACCEPT_BACKOFF_SECONDS = 0.1
ACCEPT_BACKOFF_MAX_SECONDS = 1.0


# While worker threads run Python (opening thousands of partitions), the loop waits at most this
# long for the GIL after each system call, instead of Python's default 5 ms: a step making
# twenty system calls could otherwise wait 100 ms.
GIL_SWITCH_INTERVAL_SECONDS = 0.001


class ShutdownIncomplete(Exception):
    """The broker stopped, but data it appended may not be on disk (the log says which)."""


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        # Taken before any other file is touched: a second broker on the directory stops here.
        self._lock = DataDirLock(config.data_dir)
        self._lock.acquire()
        try:
            self.cluster_id = load_cluster_id(config.data_dir, config.node_id)
            self.producer_ids = ProducerIdAllocator(config.data_dir)
            self.registry = TopicRegistry(config.data_dir, config)
            self.registry.load()
            if config.topic not in self.registry.topics:
                self.registry.create_topic_before_serving(config.topic, config.num_partitions)
            self.coordinator = GroupCoordinator.open(
                config.data_dir, initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
                fsync_commits=config.flush_on_ack)
        except BaseException:
            self._lock.release()
            raise
        self.port = config.port
        self.stopping = trio.Event()
        self.stopped = trio.Event()
        self._connections: set[Connection] = set()
        self.connection_limits = ConnectionLimits(config.max_connections or default_max_connections(),
                                                  config.max_connections_per_ip)
        self.request_budget = RequestBudget(config.queued_max_request_bytes)
        # What stopped the last connection from being accepted, logged once until one is again.
        self._accept_trouble: str | None = None
        self._flush_wanted = trio.Event()
        self._data_arrived = trio.Event()

    @property
    def advertised_address(self) -> tuple[str, int]:
        return self.config.advertised_host or self.config.host, self.config.advertised_port or self.port

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until SIGINT/SIGTERM or `stop()`, then drain and close the logs cleanly."""
        try:
            listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        except OSError:
            await self._close_storage()
            self._lock.release()
            raise
        self.port = listeners[0].socket.getsockname()[1]
        monitor = LoopMonitor()
        trio.lowlevel.add_instrument(monitor)
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
        try:
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as services:
                    # Started (handlers installed) before the ready line, so a SIGTERM sent as soon
                    # as the broker says it is ready stops it cleanly instead of killing it.
                    await services.start(self._watch_signals)
                    services.start_soon(self._maintenance)
                    services.start_soon(self._flush_policy)
                    services.start_soon(self.coordinator.run)
                    services.start_soon(self._close_idle_connections)
                    for listener in listeners:
                        services.start_soon(self._accept, listener, connections)
                    logger.info("ready: listening on %s:%d, data dir %s, topic %s",
                                self.config.host, self.port, self.config.data_dir, self.config.topic)
                    task_status.started(self.port)
                    await self.stopping.wait()
                    services.cancel_scope.cancel()
                logger.info("stopping: finishing in-flight requests")
                # Parked JoinGroup/SyncGroup requests are answered now rather than cut off.
                self.coordinator.unload()
                for connection in self._connections:
                    connection.interrupt_read()
                connections.cancel_scope.deadline = trio.current_time() + SHUTDOWN_GRACE_SECONDS
        finally:
            trio.lowlevel.remove_instrument(monitor)
            sys.setswitchinterval(switch_interval)
            durable = await self._close_storage()
            self._lock.release()
            self.stopped.set()
        if not durable:
            raise ShutdownIncomplete("appended data may not be on disk")

    async def _close_storage(self) -> bool:
        """Close the logs in worker threads, even when cancelled, and log what could not be
        written; whether everything appended is on disk."""
        with trio.CancelScope(shield=True):
            outcome = await self.registry.close()
            await trio.to_thread.run_sync(self.coordinator.close, outcome)
        if outcome.unsynced:
            logger.error("stopped: appended data may not be on disk in %d log(s) (%s); the next start "
                         "recovers what is there", len(outcome.unsynced), outcome.unsynced[0])
        elif outcome.unwritten:
            logger.warning("stopped: everything appended is on disk, but %d file(s) could not be written "
                           "(%s); the next start recovers without them", len(outcome.unwritten), outcome.unwritten[0])
        else:
            logger.info("stopped: logs closed cleanly")
        return not outcome.unsynced

    def stop(self) -> None:
        self.stopping.set()
        self._data_arrived.set()

    async def _watch_signals(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                logger.info("received %s", signal.Signals(signum).name)
                self.stop()
                return

    async def _accept(self, listener: trio.SocketListener, connections: trio.Nursery) -> None:
        """Accept connections until the broker stops, whatever accept() or the clients do: a
        connection over max.connections or max.connections.per.ip is closed at once (Kafka waits
        for a slot before accepting more; closing frees the descriptor at once and the client
        retries), and a failing accept (EMFILE, ENFILE, ENOBUFS, ENOMEM...) is retried after a
        back-off."""
        backoff = 0.0
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                self._note_accept_trouble(f"accepting connections failed ({exc.strerror or exc}); "
                                          f"retrying with a back-off of up to {ACCEPT_BACKOFF_MAX_SECONDS:g} s")
                backoff = min(max(2 * backoff, ACCEPT_BACKOFF_SECONDS), ACCEPT_BACKOFF_MAX_SECONDS)
                await trio.sleep(backoff)
                continue
            backoff = 0.0
            try:
                ip = stream.socket.getpeername()[0]
            except OSError:  # the client has already gone
                stream.socket.close()
                continue
            refusal = self.connection_limits.admit(ip)
            if refusal is not None:
                self._note_accept_trouble(f"{refusal}: closing new connections over it")
                stream.socket.close()
                continue
            self._accept_trouble = None
            connection = Connection(stream.socket, self.config.max_request_bytes, self.request_budget)
            self._connections.add(connection)
            connections.start_soon(self._serve_connection, stream, connection, ip)

    def _note_accept_trouble(self, trouble: str) -> None:
        if trouble != self._accept_trouble:
            logger.warning("%s", trouble)
            self._accept_trouble = trouble

    async def _maintenance(self) -> None:
        """Retention and producer-state snapshots, on Kafka's retention check interval."""
        while True:
            await trio.sleep(self.config.retention_check_interval_ms / 1000)
            await self.registry.maintain(int(time.time() * 1000))

    def appended(self, partition) -> None:
        """Called after every append: wakes long polls, and the flusher when the flush policy says so."""
        self._data_arrived.set()
        self._data_arrived = trio.Event()
        if partition.log.needs_flush(int(time.time() * 1000)):
            self._flush_wanted.set()

    async def wait_for_appends(self) -> None:
        """Park a long-polling fetch until the next append anywhere (or shutdown)."""
        await self._data_arrived.wait()

    async def _flush_policy(self) -> None:
        """fsync logs as their flush.messages / flush.ms ask, off the event loop."""
        while True:
            flush_ms = min((p.log.config.flush_ms for p in self.registry.all_partitions()), default=UNLIMITED)
            with trio.move_on_after(flush_ms / 1000 if flush_ms < UNLIMITED else math.inf):
                await self._flush_wanted.wait()
            self._flush_wanted = trio.Event()
            now_ms = int(time.time() * 1000)
            for partition in list(self.registry.all_partitions()):
                if partition.log.needs_flush(now_ms):
                    await partition.flush_to(partition.log.log_end_offset)

    async def _close_idle_connections(self) -> None:
        """Kafka's connections.max.idle.ms: stop waiting on connections quiet for that long; and
        the request read timeout: stop waiting on a frame begun that long ago (a client sending
        a byte now and then is never idle, and would otherwise hold its connection forever)."""
        idle_seconds = self.config.connections_max_idle_ms / 1000
        frame_seconds = self.config.request_read_timeout_ms / 1000
        while True:
            await trio.sleep(min(idle_seconds, frame_seconds) / IDLE_CHECKS_PER_PERIOD)
            now = trio.current_time()
            for connection in self._connections:
                if (connection.frame_since is not None and now - connection.frame_since >= frame_seconds
                        or connection.idle_since is not None and now - connection.idle_since >= idle_seconds):
                    connection.interrupt_read()

    async def _serve_connection(self, stream: trio.SocketStream, connection: Connection, ip: str) -> None:
        """Answer the connection's requests in order until it closes, goes idle or the broker stops.

        Only waiting for a request is interrupted at shutdown: a request being handled runs to
        its end and gets its response."""
        peer = _peer_name(stream)
        try:
            while not self.stopping.is_set():
                frame = await connection.read_frame()
                try:
                    response = await self.handle_frame(frame)
                except (ProtocolError, CloseConnection):
                    raise
                except Exception:
                    # A bug or a storage failure while handling one request must not take the
                    # broker down: that connection is closed, and the log says why.
                    logger.exception("%s: closing connection: the request failed", peer)
                    return
                if response is not None:
                    await connection.send(response)
                # Answered: its bytes go back to the budget, and are not kept while the next
                # request is awaited.
                frame = response = None
                connection.release_request()
        except (ConnectionClosed, ReadInterrupted):
            pass
        except (FrameTooLarge, ProtocolError, CloseConnection) as exc:
            logger.warning("%s: closing connection: %s", peer, exc)
        except OSError as exc:
            logger.debug("%s: connection error: %s", peer, exc)
        finally:
            connection.release_request()
            self._connections.discard(connection)
            self.connection_limits.closed(ip)
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await stream.aclose()

    async def handle_frame(self, frame: bytes | bytearray) -> list | None:
        """Decode one request, run its handler, and encode the response frame as chunks (None: no response)."""
        header, body_offset = headers.decode_request_header(frame)
        CURRENT_REQUEST.set((header.request_api_key, header.request_api_version))
        handler = handlers.HANDLERS.get(header.request_api_key)
        if handler is None:
            raise UnsupportedRequest(f"unknown API key {header.request_api_key}")
        chunks = await handler.respond(self, header, frame, body_offset)
        if chunks is None:
            return None
        size = sum(len(chunk) for chunk in chunks)
        return [_SIZE.pack(size), *chunks]


def _peer_name(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "peer"
