"""The broker process: listener, connections, request dispatch, background maintenance, shutdown."""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Callable

import trio

from broker import handlers
from broker.acls import Authorizer
from broker.handlers.base import CloseConnection, UnsupportedRequest
from broker.handlers.sasl import SASL_MAX_RECEIVE_SIZE, CloseAfterResponse, seed_scram_credentials
from broker.config import BrokerConfig
from broker.data_dir_lock import DataDirLock
from broker.control import serve_control
from broker.connection import (Connection, ConnectionClosed, ConnectionLimits, RequestBudget, SocketTransport,
                               Transport, default_max_connections)
from broker.dynamic_config import DynamicBrokerConfigs
from broker.faults import Faults
from broker.fetch_sessions import FetchSessions
from broker.listeners import Listener
from broker.groups import GroupCoordinator
from broker.log_cleaner import LogCleaner
from broker.loop_monitor import CURRENT_REQUEST, LoopMonitor
from broker.ready_line import ready_line
from broker.metadata import ProducerIdAllocator, load_cluster_id
from broker.registry import TopicRegistry
from broker.request_trace import CURRENT_CONNECTION, RequestTrace
from broker.scram import ScramCredentials
from broker.sasl import SaslConfig
from broker.session import CURRENT_SESSION, Session, current_session
from broker.storage_work import run_storage_work
from broker.tls import SslAuthenticationError, accept_tls, looks_like_tls, principal, principal_mapper, server_context
from broker.topics import Topics
from broker.transactions import TransactionCoordinator
from log import UNLIMITED
from log.log import current_time_ms
from protocol import headers
from protocol.errors import ProtocolError
from protocol.framing import SIZE_PREFIX, FrameTooLarge

logger = logging.getLogger("broker")

# In-flight requests get this long to finish after stop() before their connections are cut.
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


class _RequestFailed(Exception):
    """Handling a request failed (the log says why): its connection is closed."""


class Broker:
    """A broker over one data directory, used as `async with Broker(config) as broker:` in any
    trio run: entering takes the data directory's lock, opens the logs, the group offsets, the
    transaction state and the listeners; `serve()`, in that block or in a task of its own, serves
    until `stop()`; leaving stops it, waits for serve() to finish its requests, then closes
    everything, in one place, and raises ShutdownIncomplete when appended data may not be on disk.
    Signals are the caller's business (broker.__main__)."""

    def __init__(self, config: BrokerConfig, *, clock: Callable[[], int] = current_time_ms) -> None:
        self.config = config
        # Milliseconds since the epoch: the one clock of the broker's policies (retention, flushes).
        self.clock = clock
        self._lock = DataDirLock(config.data_dir)
        # Each listener with the sockets it accepts on (one per address family of its host).
        self._listeners: list[tuple[Listener, list[trio.SocketListener]]] = []
        # The port each listener is bound to, by name; `port` is the first listener's.
        self.ports: dict[str, int] = {}
        self._entered = False
        # serve() was called: leaving waits for it to return.
        self._served = False
        self.port = config.port
        self.stopping = trio.Event()
        self.trace: RequestTrace | None = None
        self.faults = Faults()
        self._control: trio.SocketListener | None = None
        # Set when serve() has returned: no request is being handled any more.
        self.stopped = trio.Event()
        self._connections: set[Connection] = set()
        self.connection_limits = ConnectionLimits(config.max_connections or default_max_connections(),
                                                  config.max_connections_per_ip)
        self.request_budget = RequestBudget(config.queued_max_request_bytes)
        # What stopped the last connection from being accepted, logged once until one is again.
        self._accept_trouble: str | None = None
        self._flush_wanted = trio.Event()
        self._data_arrived = trio.Event()
        self.fetch_sessions = FetchSessions(config.max_incremental_fetch_session_cache_slots, clock)

    async def __aenter__(self) -> Broker:
        await run_storage_work(self._open_storage)
        self._entered = True
        try:
            await seed_scram_credentials(self)
            if self.config.topic not in self.registry.topics:
                await self.registry.create_topic(self.config.topic, self.config.num_partitions)
            for listener in self.config.effective_listeners:
                # Kafka's empty host: every interface.
                sockets = await trio.open_tcp_listeners(listener.port, host=listener.host or None)
                self._listeners.append((listener, sockets))
                self.ports[listener.name] = sockets[0].socket.getsockname()[1]
            if self.config.control_port is not None:
                # Loopback only, whatever --host says: it lets anyone who reaches it break the broker.
                (self._control,) = await trio.open_tcp_listeners(self.config.control_port, host="127.0.0.1")
        except BaseException:
            await self._close()
            raise
        self.port = self.ports[self.config.effective_listeners[0].name]
        return self

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        self.stop()
        if self._served:
            # Served by a task of its own (a test's fixture, say): its requests end before the files close.
            with trio.CancelScope(shield=True):
                await self.stopped.wait()
        durable = await self._close()
        if not durable and exc_type is None:
            raise ShutdownIncomplete("appended data may not be on disk")

    def _open_storage(self) -> None:
        """Take the lock, then open the data directory's metadata, logs, group offsets and
        transaction state (file work: in a worker thread)."""
        # Taken before any other file is touched: a second broker on the directory stops here.
        self._lock.acquire()
        try:
            self.cluster_id = load_cluster_id(self.config.data_dir, self.config.node_id)
            self.producer_ids = ProducerIdAllocator(self.config.data_dir)
            self.authorizer = (Authorizer.open(
                self.config.data_dir, super_users=self.config.super_users,
                allow_everyone_if_no_acl_found=self.config.allow_everyone_if_no_acl_found)
                if self.config.authorizer_class_name else None)
            self.scram_credentials = ScramCredentials.load(self.config.data_dir)
            self.sasl = SaslConfig.from_config(self.config, self.scram_credentials)
            # Each TLS listener's context and principal mapping, their files read here, at start.
            self._tls = {listener.name: (server_context(self.config, listener.name),
                                         principal_mapper(self.config, listener.name))
                         for listener in self.config.effective_listeners if listener.tls}
            self.trace = RequestTrace(self.config.trace, self.clock) if self.config.trace else None
            self.dynamic_config = DynamicBrokerConfigs(self.config.data_dir)
            self.dynamic_config.load()
            self.registry = TopicRegistry(self.config.data_dir, self.config, clock=self.clock,
                                          topic_defaults=self.dynamic_config.topic_defaults())
            self.registry.load()
            self.coordinator = GroupCoordinator.open(
                self.config.data_dir, initial_rebalance_delay_ms=self.config.group_initial_rebalance_delay_ms,
                fsync_commits=self.config.flush_on_ack, clock=self.clock)
            self.topics = Topics(self.registry, node_id=self.config.node_id, num_partitions=self.config.num_partitions,
                                 auto_create=self.config.auto_create_topics,
                                 forget_offsets=self.coordinator.offsets.delete_topic)
            self.transactions = TransactionCoordinator.open(
                self.config.data_dir, fsync=self.config.flush_on_ack, clock=self.clock,
                producer_ids=self.producer_ids, partition=self.registry.partition, groups=self.coordinator,
                appended=self.appended, max_timeout_ms=self.config.transaction_max_timeout_ms,
                id_expiration_ms=self.config.transactional_id_expiration_ms)
            self.log_cleaner = LogCleaner(
                self.registry, [self.coordinator.offsets.internal_log, self.transactions.state_log],
                backoff_ms=self.config.log_cleaner_backoff_ms, buffer_bytes=self.config.log_cleaner_dedupe_buffer_size,
                clock=self.clock)
        except BaseException:
            self._lock.release()
            raise

    async def _close(self) -> bool:
        """Close the listeners, the logs, the offsets and the transaction state, and release the
        lock, even when cancelled; whether everything appended is on disk."""
        with trio.CancelScope(shield=True):
            try:
                for listener in [*(socket for _, sockets in self._listeners for socket in sockets),
                                 *filter(None, [self._control])]:
                    await listener.aclose()
                return await self._close_storage()
            finally:
                if self.trace is not None:
                    self.trace.close()
                self._lock.release()
                self._entered = False

    @property
    def advertised_address(self) -> tuple[str, int]:
        """The address given to the client of the request being answered: its listener's
        (outside any connection, the first listener's)."""
        name = current_session().listener
        listener = next((listener for listener, _ in self._listeners if listener.name == name),
                        self.config.effective_listeners[0])
        return listener.advertised_host or listener.host, listener.advertised_port or self.ports[listener.name]

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until `stop()`, then finish the requests in flight."""
        if not self._entered:
            raise RuntimeError("serve() needs an open broker: async with Broker(config) as broker: ...")
        self._served = True
        monitor = LoopMonitor()
        trio.lowlevel.add_instrument(monitor)
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
        try:
            # The trace's writer outlives the connections: their last requests are traced too.
            async with trio.open_nursery() as tracing:
                if self.trace is not None:
                    tracing.start_soon(self.trace.run)
                self.faults.attach(self._fetch_state_changed)
                async with trio.open_nursery() as connections:
                    async with trio.open_nursery() as services:
                        services.start_soon(self._maintenance)
                        if self.config.log_cleaner_enable:
                            services.start_soon(self.log_cleaner.run)
                        services.start_soon(self._flush_policy)
                        services.start_soon(self.coordinator.run)
                        services.start_soon(self.transactions.run)
                        services.start_soon(self._close_idle_connections)
                        for listener, sockets in self._listeners:
                            for socket in sockets:
                                services.start_soon(self._accept, listener, socket, connections)
                        if self._control is not None:
                            services.start_soon(serve_control, self._control, self.faults)
                            logger.warning("control interface: listening on 127.0.0.1:%d (fault injection: "
                                           "for tests only)", self._control.socket.getsockname()[1])
                        logger.info("%s", ready_line([(listener.name, listener.host, self.ports[listener.name])
                                                      for listener, _ in self._listeners],
                                                     self.config.data_dir, self.config.topic))
                        task_status.started(self.port)
                        await self.stopping.wait()
                        services.cancel_scope.cancel()
                    logger.info("stopping: finishing in-flight requests")
                    # Parked JoinGroup/SyncGroup requests are answered now rather than cut off.
                    self.coordinator.unload()
                    for connection in self._connections:
                        connection.interrupt_read()
                    connections.cancel_scope.deadline = trio.current_time() + SHUTDOWN_GRACE_SECONDS
                tracing.cancel_scope.cancel()
        finally:
            trio.lowlevel.remove_instrument(monitor)
            monitor.close()
            sys.setswitchinterval(switch_interval)
            self.stopped.set()

    async def _close_storage(self) -> bool:
        """Close the logs off the event loop and log what could not be written; whether
        everything appended is on disk."""
        outcome = await self.registry.close()
        await run_storage_work(self.coordinator.close, outcome)
        await run_storage_work(self.transactions.close, outcome)
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

    async def _accept(self, listener: Listener, socket: trio.SocketListener, connections: trio.Nursery) -> None:
        """Accept connections until the broker stops, whatever accept() or the clients do: a
        connection over max.connections or max.connections.per.ip is closed at once (Kafka waits
        for a slot before accepting more; closing frees the descriptor at once and the client
        retries), and a failing accept (EMFILE, ENFILE, ENOBUFS, ENOMEM...) is retried after a
        back-off."""
        backoff = 0.0
        while True:
            try:
                stream = await socket.accept()
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
            connections.start_soon(self._serve_connection, stream, listener,
                                   Session(listener.name, listener.security_protocol, ip))

    def _note_accept_trouble(self, trouble: str) -> None:
        if trouble != self._accept_trouble:
            logger.warning("%s", trouble)
            self._accept_trouble = trouble

    async def _maintenance(self) -> None:
        """Retention and producer-state snapshots, on Kafka's retention check interval."""
        while True:
            await trio.sleep(self.config.retention_check_interval_ms / 1000)
            for partition in await self.registry.maintain(self.clock()):
                self.partition_changed(partition)

    def appended(self, partition) -> None:
        """Called after every append: wakes long polls, and the flusher when the flush policy says so."""
        self.partition_changed(partition)
        if partition.log.needs_flush(self.clock()):
            self._flush_wanted.set()

    def partition_changed(self, partition) -> None:
        """The partition's high watermark, last stable offset or log start offset moved: its fetch
        sessions read it next, and long polls wake."""
        self.fetch_sessions.changed(partition.topic.name, partition.index)
        self._wake_fetches()

    def _fetch_state_changed(self) -> None:
        """Any partition may answer otherwise (a fetch pause ended)."""
        self.fetch_sessions.all_changed()
        self._wake_fetches()

    def _wake_fetches(self) -> None:
        self._data_arrived.set()
        self._data_arrived = trio.Event()

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
            now_ms = self.clock()
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

    async def _serve_connection(self, stream: trio.SocketStream, listener: Listener, session: Session) -> None:
        """Answer the connection's requests in order until it closes, goes idle or the broker stops.

        Only waiting for a request is interrupted at shutdown: a request being handled runs to
        its end and gets its response."""
        peer = _peer_name(stream)
        CURRENT_CONNECTION.set(peer)
        CURRENT_SESSION.set(session)
        connection = None
        try:
            connection = Connection(await self._transport(stream, listener, session), self.config.max_request_bytes,
                                    self.request_budget)
            if listener.sasl:
                session.sasl = self.sasl.authenticator(session)
                # Until it authenticates, a client is held to Kafka's sasl.server.max.receive.size.
                connection.max_frame_bytes = SASL_MAX_RECEIVE_SIZE
            self._connections.add(connection)
            await connection.serve(functools.partial(self._answer, connection, session, peer))
            if session.authentication_failed:
                # Kafka's connection.failed.authentication.delay.ms: the answer is read before the close.
                await trio.sleep(self.config.connection_failed_authentication_delay_ms / 1000)
        except _RequestFailed:
            pass
        except FrameTooLarge as exc:
            if not listener.tls and looks_like_tls(SIZE_PREFIX.pack(exc.size)):
                # Its ClientHello read as a frame size of some 369 MB.
                logger.warning("%s: closing connection: a TLS client connected to plaintext listener %s",
                               peer, listener.name)
            else:
                logger.warning("%s: closing connection: %s", peer, exc)
        except (ProtocolError, CloseConnection, SslAuthenticationError) as exc:
            logger.warning("%s: closing connection: %s", peer, exc)
        except ConnectionClosed:
            pass  # before its TLS handshake
        except trio.TooSlowError:
            logger.warning("%s: closing connection: no TLS handshake within %d ms", peer,
                           self.config.request_read_timeout_ms)
        except OSError as exc:
            logger.debug("%s: connection error: %s", peer, exc)
        finally:
            self._connections.discard(connection)
            self.connection_limits.closed(session.client_host)
            if self.trace is not None:
                self.trace.connection_closed(peer)
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await (connection.transport if connection else stream).aclose()

    async def _transport(self, stream: trio.SocketStream, listener: Listener, session: Session) -> Transport:
        """The connection's bytes: plaintext, or decrypted once the TLS handshake (bounded by the
        request read timeout) is done, the client's certificate then naming an SSL listener's
        principal (a SASL_SSL one's comes from its SASL authentication)."""
        if not listener.tls:
            return SocketTransport(stream)
        context, mapper = self._tls[listener.name]
        with trio.fail_after(self.config.request_read_timeout_ms / 1000):
            transport = await accept_tls(stream, context, listener.name)
        if not listener.sasl:
            session.principal = principal(transport, mapper)
        return transport

    async def _answer(self, connection: Connection, session: Session, peer: str,
                      frame: bytes | bytearray) -> list | None:
        try:
            response = await self.handle_frame(frame)
        except CloseAfterResponse as close:
            # A failed authentication: the client is told why, then the connection reads no more.
            logger.info("%s: closing connection after the response: %s", peer, close)
            session.authentication_failed = True
            connection.interrupt_read()
            return close.response
        except (ProtocolError, CloseConnection):
            raise
        except Exception as exc:
            # A bug or a storage failure while handling one request must not take the broker
            # down: that connection is closed, and the log says why.
            logger.exception("%s: closing connection: the request failed", peer)
            raise _RequestFailed() from exc
        if session.sasl is not None and session.sasl.authenticated:
            connection.max_frame_bytes = self.config.max_request_bytes
        return response

    async def handle_frame(self, frame: bytes | bytearray) -> list | None:
        """Decode one request, run its handler, and encode the response frame as chunks (None: no
        response). On a SASL listener, only what its authentication state allows is answered
        (CloseConnection otherwise; CloseAfterResponse when an answer fails the authentication)."""
        sasl = current_session().sasl
        if sasl is not None and sasl.raw_tokens:
            # After a SaslHandshake v0, frames are bare SASL tokens, without a request header.
            return handlers.sasl.answer_raw_token(self, sasl, frame)
        header, body_offset = headers.decode_request_header(frame)
        CURRENT_REQUEST.set((header.request_api_key, header.request_api_version))
        if sasl is not None:
            handlers.sasl.admit(self, sasl, header, frame, body_offset)
        handler = handlers.HANDLERS.get(header.request_api_key)
        if handler is None:
            raise UnsupportedRequest(f"unknown API key {header.request_api_key}")
        chunks = await handler.respond(self, header, frame, body_offset)
        if chunks is None:
            return None
        size = sum(len(chunk) for chunk in chunks)
        response = [SIZE_PREFIX.pack(size), *chunks]
        if sasl is not None:
            handlers.sasl.close_if_failed(sasl, response)
        return response


def _peer_name(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "peer"
