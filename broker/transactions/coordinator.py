"""The transaction coordinator: Kafka's transactions (KIP-98, KIP-360, KIP-890 part 1), with this
broker coordinating every transactional id.

Follows Kafka's TransactionCoordinator, TransactionMetadata and TransactionStateManager. A
transactional id goes Empty -> Ongoing (AddPartitionsToTxn, AddOffsetsToTxn) -> PrepareCommit or
PrepareAbort (EndTxn) -> CompleteCommit or CompleteAbort (once the markers are written) -> Ongoing
with its next transaction; InitProducerId bumps the epoch, and first fences an Ongoing
transaction (PrepareEpochFence): it is aborted with the bumped epoch. Each change is a
`Transition` prepared while no other is pending (`pending_state`), written to the transaction
state log, and only then applied and answered; a request that meets a pending transition is
answered CONCURRENT_TRANSACTIONS, as Kafka answers it.

EndTxn is answered once PrepareCommit/PrepareAbort is logged; the markers are written after, by a
task in the nursery of `run()`, as Kafka's marker channel writes them: COMMIT or ABORT control
batches on each partition, the group coordinator's completion for the offsets partition; then
CompleteCommit/CompleteAbort is logged. The producer's next request for the id waits for that.
Timeouts and expiry are deadlines (broker/groups/timers.py), one per transactional id, for what
its state waits for.

A refused request raises ApiError.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from broker.groups.offsets import TopicPartition
from broker.groups.timers import Deadline, Deadlines
from broker.internal_log import InternalLog
from broker.producer_state import NO_PRODUCER_EPOCH, NO_PRODUCER_ID
from broker.registry import CloseOutcome, Partition
from broker.storage_failures import RepeatedFailure
from broker.transactions.state_log import TransactionLogEntry, TransactionStateStore
from log import LogError, LogStorageError, RecordBatchTooLargeError, current_time_ms
from protocol.errors import ApiError, ErrorCode

if TYPE_CHECKING:
    from broker.groups import GroupCoordinator
    from broker.metadata import ProducerIdAllocator

logger = logging.getLogger(__name__)

# Kafka's partition of a group's offsets on an offsets topic of one partition: where
# TxnOffsetCommit writes, and what AddOffsetsToTxn adds to the transaction.
OFFSETS_PARTITION: TopicPartition = ("__consumer_offsets", 0)
# The coordinator epoch on the markers: the leader epoch of the transaction log's partition in
# Kafka. One broker, one coordinator, never replaced by another.
COORDINATOR_EPOCH = 0
_MAX_EPOCH = 2**15 - 1
# The int16 length of the transaction log key's string.
_MAX_ID_BYTES = 2**15 - 1
# Kafka's defaults for transaction.abort.timed.out.transaction.cleanup.interval.ms and
# transactional.id.expiration's cleanup interval: here each transaction is aborted when its own
# timeout passes and each id expires when its own expiration passes (exact deadlines), and these
# only space out the retries after the transaction log could not be written.
ABORT_RETRY_SECONDS = 10
EXPIRATION_RETRY_SECONDS = 60 * 60
# Markers and their completion that could not be written (a full disk) are retried this often,
# as Kafka's marker channel retries them.
MARKER_RETRY_SECONDS = 1
# Kafka answers CONCURRENT_TRANSACTIONS to a request that meets a transaction whose markers are
# being written, and the producer retries after its backoff (100 ms in librdkafka); here the
# markers are local and take well under a millisecond, so the request waits for them instead, but
# no longer than this.
MARKERS_WAIT_SECONDS = 5


class TransactionState(enum.IntEnum):
    """The states of a transactional id, numbered as Kafka's transaction log numbers them."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def label(self) -> str:
        """Kafka's name of the state ("PrepareCommit"), as DescribeTransactions and ListTransactions show it."""
        return _LABELS[self]


State = TransactionState
_VALID_PREVIOUS = {
    State.EMPTY: {State.EMPTY, State.COMPLETE_COMMIT, State.COMPLETE_ABORT},
    State.ONGOING: {State.ONGOING, State.EMPTY, State.COMPLETE_COMMIT, State.COMPLETE_ABORT},
    State.PREPARE_COMMIT: {State.ONGOING},
    State.PREPARE_ABORT: {State.ONGOING, State.PREPARE_EPOCH_FENCE},
    State.COMPLETE_COMMIT: {State.PREPARE_COMMIT},
    State.COMPLETE_ABORT: {State.PREPARE_ABORT},
    State.DEAD: {State.EMPTY, State.COMPLETE_COMMIT, State.COMPLETE_ABORT},
    State.PREPARE_EPOCH_FENCE: {State.ONGOING},
}
# Idle: an id in one of these expires after transactional.id.expiration.ms without a change.
_EXPIRABLE = frozenset({State.EMPTY, State.COMPLETE_COMMIT, State.COMPLETE_ABORT})
_PREPARING = frozenset({State.PREPARE_COMMIT, State.PREPARE_ABORT})
# Made once: every EndTxn names its state in a debug line.
_LABELS = {state: "".join(word.capitalize() for word in state.name.split("_")) for state in State}
_STATES_BY_LABEL = {label: state for state, label in _LABELS.items()}


def is_epoch_exhausted(producer_epoch: int) -> bool:
    """An epoch that leaves no room for a fencing bump: the next InitProducerId takes a new producer id."""
    return producer_epoch >= _MAX_EPOCH - 1


def by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """Partitions grouped by topic, in order: how the log and DescribeTransactions list them."""
    topics: dict[str, list[int]] = {}
    for topic, index in sorted(partitions):
        topics.setdefault(topic, []).append(index)
    return topics


def offsets_partition(group_id: str) -> TopicPartition:
    """The offsets partition of `group_id`: the one partition of this broker's offsets log."""
    return OFFSETS_PARTITION


@dataclasses.dataclass(frozen=True)
class Transition:
    """What a transactional id becomes once this is logged (Kafka's TxnTransitMetadata)."""

    producer_id: int
    previous_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    timeout_ms: int
    state: TransactionState
    partitions: frozenset[TopicPartition]
    start_ms: int
    update_ms: int

    def log_entry(self) -> TransactionLogEntry:
        """The transaction log's record of it."""
        return TransactionLogEntry(
            producer_id=self.producer_id, producer_epoch=self.producer_epoch, timeout_ms=self.timeout_ms,
            state=int(self.state), partitions=by_topic(self.partitions), last_update_ms=self.update_ms,
            start_ms=self.start_ms, previous_producer_id=self.previous_producer_id)


@dataclasses.dataclass(eq=False)
class TransactionMetadata:
    """One transactional id's current state (Kafka's TransactionMetadata)."""

    transactional_id: str
    producer_id: int
    # The producer id before the last rotation: a KIP-360 retry may still name it.
    previous_producer_id: int
    producer_epoch: int
    # The epoch before the last bump that a producer asked for with its own epoch (KIP-360):
    # a retry of that request is given the current epoch again instead of being fenced.
    last_producer_epoch: int
    timeout_ms: int
    state: TransactionState
    partitions: set[TopicPartition]
    start_ms: int
    update_ms: int
    # The state being logged; no other transition may start meanwhile.
    pending_state: TransactionState | None = None
    # A fencing bump whose logging failed: the next fence reuses the epoch instead of bumping again.
    has_failed_epoch_fence: bool = False
    # The deadline of the transaction's timeout or of the id's expiration, by its state.
    deadline: Deadline | None = None
    # TxnOffsetCommits verified and not yet written: the offsets marker waits for them.
    offset_commits: int = 0
    offset_commits_done: trio.Event = dataclasses.field(default_factory=trio.Event)
    # Set once the markers of the PrepareCommit/PrepareAbort being completed are written and its
    # completion logged (or left to the next start).
    completed: trio.Event | None = None

    @classmethod
    def from_log(cls, transactional_id: str, entry: TransactionLogEntry) -> TransactionMetadata:
        """The metadata of a transaction log record (Kafka's readTxnRecordValue: the last epoch is
        not logged, and an Empty one has no partitions)."""
        state = State(entry.state)
        partitions = set() if state is State.EMPTY else {
            (topic, index) for topic, indexes in entry.partitions.items() for index in indexes}
        return cls(transactional_id, entry.producer_id, entry.previous_producer_id, entry.producer_epoch,
                   NO_PRODUCER_EPOCH, entry.timeout_ms, state, partitions, entry.start_ms, entry.last_update_ms)

    @property
    def epoch_exhausted(self) -> bool:
        return is_epoch_exhausted(self.producer_epoch)

    # -- transitions (Kafka's prepare* methods): each sets the pending state -------------------

    def _prepare(self, state: TransactionState, *, producer_id: int | None = None, producer_epoch: int | None = None,
                 last_producer_epoch: int | None = None, timeout_ms: int | None = None,
                 partitions: Iterable[TopicPartition] | None = None, start_ms: int | None = None,
                 update_ms: int | None = None) -> Transition:
        """The transition to `state`, the fields not given kept. A transition Kafka's state
        machine does not allow is a bug: it raises RuntimeError."""
        if self.pending_state is not None:
            raise RuntimeError(f"transactional id {self.transactional_id}: preparing {state.label} while "
                               f"{self.pending_state.label} is pending")
        if self.state not in _VALID_PREVIOUS[state]:
            raise RuntimeError(f"transactional id {self.transactional_id}: {self.state.label} cannot become "
                               f"{state.label}")
        transition = Transition(
            producer_id=self.producer_id if producer_id is None else producer_id,
            previous_producer_id=self.producer_id,
            producer_epoch=self.producer_epoch if producer_epoch is None else producer_epoch,
            last_producer_epoch=self.last_producer_epoch if last_producer_epoch is None else last_producer_epoch,
            timeout_ms=self.timeout_ms if timeout_ms is None else timeout_ms,
            state=state,
            partitions=frozenset(self.partitions if partitions is None else partitions),
            start_ms=self.start_ms if start_ms is None else start_ms,
            update_ms=self.update_ms if update_ms is None else update_ms)
        self.pending_state = state
        return transition

    def prepare_fence_epoch(self) -> Transition:
        """The bumped epoch that fences the producer of an Ongoing transaction (never logged as such:
        the abort that follows is, with this epoch)."""
        if self.producer_epoch == _MAX_EPOCH:
            raise RuntimeError(f"transactional id {self.transactional_id}: cannot fence epoch {_MAX_EPOCH}")
        epoch = self.producer_epoch if self.has_failed_epoch_fence else self.producer_epoch + 1
        return self._prepare(State.PREPARE_EPOCH_FENCE, producer_epoch=epoch, last_producer_epoch=NO_PRODUCER_EPOCH)

    def prepare_increment_epoch(self, timeout_ms: int, expected_epoch: int | None, now_ms: int) -> Transition:
        """InitProducerId's epoch bump; with the epoch the producer knows (KIP-360), a retry of a
        bump is given the same epoch again and an older epoch is fenced."""
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epoch, last_epoch = bumped, NO_PRODUCER_EPOCH
        elif self.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == self.producer_epoch:
            epoch, last_epoch = bumped, self.producer_epoch
        elif expected_epoch == self.last_producer_epoch:
            epoch, last_epoch = self.producer_epoch, self.last_producer_epoch
        else:
            raise ApiError(ErrorCode.PRODUCER_FENCED, f"epoch {expected_epoch} is neither the current epoch "
                                                      f"{self.producer_epoch} nor the previous one")
        return self._prepare(State.EMPTY, producer_epoch=epoch, last_producer_epoch=last_epoch, timeout_ms=timeout_ms,
                             partitions=(), start_ms=-1, update_ms=now_ms)

    def prepare_producer_id_rotation(self, producer_id: int, timeout_ms: int, now_ms: int,
                                     record_last_epoch: bool) -> Transition:
        """A new producer id at epoch 0, once the epochs of the current one are exhausted."""
        return self._prepare(State.EMPTY, producer_id=producer_id, producer_epoch=0,
                             last_producer_epoch=self.producer_epoch if record_last_epoch else NO_PRODUCER_EPOCH,
                             timeout_ms=timeout_ms, partitions=(), start_ms=-1, update_ms=now_ms)

    def prepare_add_partitions(self, partitions: frozenset[TopicPartition], now_ms: int) -> Transition:
        start_ms = self.start_ms if self.state is State.ONGOING else now_ms
        return self._prepare(State.ONGOING, partitions=self.partitions | partitions, start_ms=start_ms,
                             update_ms=now_ms)

    def prepare_end(self, commit: bool, now_ms: int) -> Transition:
        return self._prepare(State.PREPARE_COMMIT if commit else State.PREPARE_ABORT, update_ms=now_ms)

    def prepare_complete(self, now_ms: int) -> Transition:
        state = State.COMPLETE_COMMIT if self.state is State.PREPARE_COMMIT else State.COMPLETE_ABORT
        # Logged, the fence is no longer a failed one.
        self.has_failed_epoch_fence = False
        return self._prepare(state, partitions=(), update_ms=now_ms)

    def prepare_dead(self) -> Transition:
        return self._prepare(State.DEAD, partitions=())

    def complete(self, transition: Transition) -> None:
        """Apply a logged transition (Kafka's completeTransitionTo)."""
        if transition.state is not self.pending_state or transition.state in (State.DEAD, State.PREPARE_EPOCH_FENCE):
            raise RuntimeError(f"transactional id {self.transactional_id}: completing {transition.state.label} while "
                               f"{self.pending_state.label if self.pending_state else 'nothing'} is pending")
        self.producer_id = transition.producer_id
        if transition.state is State.EMPTY:
            self.previous_producer_id = transition.previous_producer_id
        self.producer_epoch = transition.producer_epoch
        self.last_producer_epoch = transition.last_producer_epoch
        self.timeout_ms = transition.timeout_ms
        self.partitions = set(transition.partitions)
        self.start_ms = transition.start_ms
        self.update_ms = transition.update_ms
        self.state = transition.state
        self.pending_state = None


def _write_error(exc: LogError) -> ApiError:
    """Kafka's answer when the transaction log cannot take a state change (appendTransactionToLog)."""
    if isinstance(exc, LogStorageError):
        return ApiError(ErrorCode.NOT_COORDINATOR, "the transaction log cannot be written")
    if isinstance(exc, RecordBatchTooLargeError):
        return ApiError(ErrorCode.UNKNOWN_SERVER_ERROR, "the transaction's state is too large to log")
    return ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE, "the transaction log cannot be written")


# A verification the coordinator refuses as fenced is INVALID_PRODUCER_EPOCH to the produce or offset
# commit that asked (Kafka's AddPartitionsToTxnManager); to a produce, the errors a producer retries
# are NOT_ENOUGH_REPLICAS besides, which needs no metadata refresh (Kafka's ReplicaManager).
_VERIFICATION_ERRORS = {ErrorCode.PRODUCER_FENCED: ErrorCode.INVALID_PRODUCER_EPOCH}
_PRODUCE_VERIFICATION_ERRORS = {
    **_VERIFICATION_ERRORS,
    ErrorCode.CONCURRENT_TRANSACTIONS: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.COORDINATOR_NOT_AVAILABLE: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.NOT_COORDINATOR: ErrorCode.NOT_ENOUGH_REPLICAS,
}
# What a partition answers a marker it does not need: the producer (or coordinator) moved on there.
_MARKER_NOT_NEEDED = frozenset({ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.TRANSACTION_COORDINATOR_FENCED})


class TransactionCoordinator:
    """Every transactional id's transactions, over the transaction state log.

    `partition(topic, index)` finds a partition to write markers to (None once deleted);
    `groups.complete_transaction(...)` completes the transactional offsets; `appended(partition)`
    is called after each marker appended; `max_timeout_ms` and `id_expiration_ms` are the broker's
    transaction.max.timeout.ms and transactional.id.expiration.ms (BrokerConfig holds their defaults)."""

    def __init__(self, store: TransactionStateStore, *, producer_ids: ProducerIdAllocator,
                 partition: Callable[[str, int], Partition | None], groups: GroupCoordinator,
                 appended: Callable[[Partition], None], max_timeout_ms: int, id_expiration_ms: int,
                 clock: Callable[[], int] = current_time_ms) -> None:
        self._store = store
        self._producer_ids = producer_ids
        self._partition = partition
        self._groups = groups
        self._appended = appended
        # Wall-clock milliseconds: transaction start and update times, as logged.
        self.clock = clock
        self.max_timeout_ms = max_timeout_ms
        self.id_expiration_ms = id_expiration_ms
        self.transactions: dict[str, TransactionMetadata] = {}
        self._deadlines = Deadlines()
        self._nursery: trio.Nursery | None = None
        # Tasks started before run() opened its nursery.
        self._early: list[tuple[Callable[..., Awaitable[None]], tuple]] = []
        self._closed = False
        self._log_failures = RepeatedFailure(logger, "cannot write the transaction log")
        self._marker_failures = RepeatedFailure(logger, "cannot write transaction markers, retrying")
        for transactional_id, entry in store.entries().items():
            self._load(TransactionMetadata.from_log(transactional_id, entry))

    @classmethod
    def open(cls, data_dir: Path, *, fsync: bool = False, clock: Callable[[], int] = current_time_ms,
             **options) -> TransactionCoordinator:
        """A coordinator over the transaction log in `data_dir`, replayed (file work: in a worker thread)."""
        return cls(TransactionStateStore(data_dir, fsync=fsync, clock=clock), clock=clock, **options)

    def _load(self, txn: TransactionMetadata) -> None:
        """Take a transaction from the log, and finish what was decided (Kafka's
        loadTransactionsForTxnTopicPartition): markers of a PrepareCommit or PrepareAbort are
        written again (where they already are, they are not appended twice)."""
        self.transactions[txn.transactional_id] = txn
        if txn.state in _PREPARING:
            logger.info("transactional id %s: completing its %s after a restart", txn.transactional_id, txn.state.label)
            self._start_completion(txn)
        elif txn.state is State.PREPARE_EPOCH_FENCE:
            # Kafka never logs this state; a fence that was logged is finished as one.
            txn.state = State.ONGOING
            self._spawn(self._abort_by_coordinator, txn, "its producer was being fenced")

    @property
    def active(self) -> bool:
        """False once run() has ended (shutdown)."""
        return not self._closed

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run the timeouts, expirations and marker writes until cancelled; a failing one (a bug)
        fails this task."""
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._deadlines.run)
                self._nursery = nursery
                for task, args in self._early:
                    nursery.start_soon(task, *args)
                self._early.clear()
                for txn in list(self.transactions.values()):
                    self._settle(txn)
                task_status.started()
        finally:
            self._nursery = None
            self._closed = True

    @property
    def state_log(self) -> InternalLog:
        """The transaction state's internal log, which the broker's log cleaner compacts."""
        return self._store.internal_log

    def close(self, outcome: CloseOutcome | None = None) -> None:
        """Close the transaction log (blocking on fsyncs), noting in `outcome` what could not be written."""
        self._store.close(outcome)

    def _spawn(self, task: Callable[..., Awaitable[None]], *args) -> bool:
        """Start `task` in the coordinator's nursery; whether it will run (not after shutdown,
        when the log holds what the next start finishes)."""
        if self._nursery is not None:
            self._nursery.start_soon(task, *args)
        elif self._closed:
            return False
        else:
            self._early.append((task, args))
        return True

    # -- lookups and checks ---------------------------------------------------------------------

    def _check_active(self) -> None:
        if self._closed:
            raise ApiError(ErrorCode.NOT_COORDINATOR, "the broker is shutting down")

    @staticmethod
    def _check_id(transactional_id: str | None) -> None:
        if not transactional_id:
            raise ApiError(ErrorCode.INVALID_REQUEST, "a transactional id is required")
        if len(transactional_id.encode()) > _MAX_ID_BYTES:
            # Kafka takes such an id and fails writing its log key (UNKNOWN_SERVER_ERROR), the id
            # left half made; refused here before anything is kept of it.
            raise ApiError(ErrorCode.INVALID_REQUEST, f"a transactional id is at most {_MAX_ID_BYTES} bytes")

    def _current(self, transactional_id: str | None, producer_id: int, producer_epoch: int) -> TransactionMetadata:
        """The transaction that `producer_id` at `producer_epoch` runs for `transactional_id`."""
        self._check_id(transactional_id)
        self._check_active()
        txn = self.transactions.get(transactional_id)
        if txn is None or txn.producer_id != producer_id:
            raise ApiError(ErrorCode.INVALID_PRODUCER_ID_MAPPING,
                           f"producer id {producer_id} is not the one of transactional id {transactional_id}")
        if txn.producer_epoch != producer_epoch:
            raise ApiError(ErrorCode.PRODUCER_FENCED, f"epoch {producer_epoch} is not the current epoch "
                                                      f"{txn.producer_epoch} of transactional id {transactional_id}")
        return txn

    # -- writing state changes ------------------------------------------------------------------

    async def _append(self, txn: TransactionMetadata, transition: Transition) -> None:
        """Log `transition` (raises LogError)."""
        try:
            if transition.state is State.DEAD:
                await self._store.remove(txn.transactional_id)
            else:
                await self._store.write(txn.transactional_id, transition.log_entry())
        except LogError as exc:
            self._log_failures.failed(f"transactional id {txn.transactional_id}: {exc}")
            raise
        self._log_failures.succeeded()

    async def _write(self, txn: TransactionMetadata, transition: Transition) -> None:
        """Log `transition` and apply it; if it cannot be logged, the id stays as it was and the
        request is refused as Kafka refuses it."""
        try:
            await self._append(txn, transition)
        except BaseException as exc:
            txn.pending_state = None
            self._settle(txn)
            if isinstance(exc, LogError):
                raise _write_error(exc) from exc
            raise
        txn.complete(transition)
        self._settle(txn)

    def _settle(self, txn: TransactionMetadata) -> None:
        """Arm the id's deadline for what its state waits for: an Ongoing transaction its timeout,
        an idle id its expiration. In any other state, or while a transition is pending, the
        deadline is left as it is: passing then, it finds nothing to do, and the next state settles
        again. (Disarming and rearming it would end and start a task for every transaction.)"""
        if txn.pending_state is not None:
            return
        if txn.state is State.ONGOING:
            due_ms = txn.start_ms + txn.timeout_ms
        elif txn.state in _EXPIRABLE:
            due_ms = txn.update_ms + self.id_expiration_ms
        else:
            return
        if txn.deadline is None:
            txn.deadline = self._deadlines.disarmed(lambda: self._deadline_passed(txn))
        txn.deadline.reset(max(0, due_ms - self.clock()) / 1000)

    def _deadline_passed(self, txn: TransactionMetadata) -> None:
        if self.transactions.get(txn.transactional_id) is not txn or txn.pending_state is not None:
            return
        if txn.state is State.ONGOING:
            self._spawn(self._abort_by_coordinator, txn, f"it was open longer than its timeout of {txn.timeout_ms} ms")
        elif txn.state in _EXPIRABLE:
            self._spawn(self._expire, txn)

    # -- InitProducerId -------------------------------------------------------------------------

    async def _allocate_producer_id(self) -> int:
        try:
            return await self._producer_ids.allocate()
        except OSError as exc:
            # Kafka's answer while no block of producer ids is available yet; clients retry it.
            raise ApiError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "cannot reserve producer ids") from exc

    async def init_producer_id(self, transactional_id: str | None, timeout_ms: int,
                               expected: tuple[int, int] | None = None) -> tuple[int, int]:
        """InitProducerId: the producer id and epoch for `transactional_id`, bumped (fencing the
        previous producer); `expected` is the id and epoch the producer has (KIP-360). Without a
        transactional id (an idempotent producer), a new producer id at epoch 0."""
        if transactional_id is None:
            return await self._allocate_producer_id(), 0
        self._check_id(transactional_id)
        if not 0 < timeout_ms <= self.max_timeout_ms:
            raise ApiError(ErrorCode.INVALID_TRANSACTION_TIMEOUT,
                           f"transaction timeout {timeout_ms} ms is not within 1-{self.max_timeout_ms} ms "
                           f"(transaction.max.timeout.ms)")
        self._check_active()
        known = self.transactions.get(transactional_id)
        if known is not None:
            await self._wait_for_markers(known)
        spare_producer_id = None
        while True:
            # Looked up after each wait: the id may have changed meanwhile.
            txn = self.transactions.get(transactional_id)
            if txn is None:
                producer_id = await self._allocate_producer_id()
                txn = self.transactions.setdefault(transactional_id, TransactionMetadata(
                    transactional_id, producer_id, NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_PRODUCER_EPOCH, timeout_ms,
                    State.EMPTY, set(), -1, self.clock()))
            transition = self._prepare_init(txn, timeout_ms, expected, spare_producer_id)
            if transition is not None:
                break
            # The epochs are exhausted: a new producer id, then decide again on what is current.
            spare_producer_id = await self._allocate_producer_id()
        if transition.state is State.PREPARE_EPOCH_FENCE:
            # The ongoing transaction is aborted first; the producer retries and gets its epoch then.
            logger.info("transactional id %s: fencing epoch %d, aborting its ongoing transaction",
                        transactional_id, txn.producer_epoch)
            await self._end(txn, transition.producer_id, transition.producer_epoch, commit=False, from_client=False)
            raise ApiError(ErrorCode.CONCURRENT_TRANSACTIONS,
                           "the ongoing transaction of the fenced producer was aborted")
        await self._write(txn, transition)
        logger.info("transactional id %s: producer id %d, epoch %d", transactional_id, txn.producer_id,
                    txn.producer_epoch)
        return txn.producer_id, txn.producer_epoch

    def _prepare_init(self, txn: TransactionMetadata, timeout_ms: int, expected: tuple[int, int] | None,
                      spare_producer_id: int | None) -> Transition | None:
        """InitProducerId's transition (Kafka's prepareInitProducerIdTransit); None when it needs a
        new producer id and `spare_producer_id` is None."""
        if txn.pending_state is not None:
            raise ApiError(ErrorCode.CONCURRENT_TRANSACTIONS, "a state change of the transactional id is in progress")
        if expected is not None and not self._valid_producer_id(txn, *expected):
            raise ApiError(ErrorCode.PRODUCER_FENCED, f"producer id {expected[0]} is not the transactional id's")
        if txn.state in _PREPARING:
            raise ApiError(ErrorCode.CONCURRENT_TRANSACTIONS, "the last transaction is being completed")
        if txn.state in (State.EMPTY, State.COMPLETE_COMMIT, State.COMPLETE_ABORT):
            if txn.epoch_exhausted and (expected is None or expected[1] == txn.producer_epoch):
                if spare_producer_id is None:
                    return None
                return txn.prepare_producer_id_rotation(spare_producer_id, timeout_ms, self.clock(),
                                                        record_last_epoch=expected is not None)
            return txn.prepare_increment_epoch(timeout_ms, None if expected is None else expected[1], self.clock())
        if txn.state is State.ONGOING:
            return txn.prepare_fence_epoch()
        raise RuntimeError(f"transactional id {txn.transactional_id} is {txn.state.label}, never a current state")

    @staticmethod
    def _valid_producer_id(txn: TransactionMetadata, producer_id: int, producer_epoch: int) -> bool:
        """Whether the producer id a producer has is the transactional id's: its current one, any
        while the id is new (the producer recovers from UNKNOWN_PRODUCER_ID), or the one before a
        rotation that its exhausted epoch caused (a retry)."""
        return (txn.producer_epoch == NO_PRODUCER_EPOCH or producer_id == txn.producer_id
                or producer_id == txn.previous_producer_id and is_epoch_exhausted(producer_epoch))

    # -- AddPartitionsToTxn, AddOffsetsToTxn ---------------------------------------------------

    async def add_partitions(self, transactional_id: str | None, producer_id: int, producer_epoch: int,
                             partitions: Iterable[TopicPartition]) -> None:
        """Add partitions (existing ones: the caller checks) to the producer's transaction, which
        begins with the first."""
        txn = self._current(transactional_id, producer_id, producer_epoch)
        if txn.state in _PREPARING:
            await self._wait_for_markers(txn)
            txn = self._current(transactional_id, producer_id, producer_epoch)
        if txn.pending_state is not None or txn.state in _PREPARING:
            raise ApiError(ErrorCode.CONCURRENT_TRANSACTIONS, "the last transaction is being completed")
        added = frozenset(partitions)
        if txn.state is State.ONGOING and added <= txn.partitions:
            return
        await self._write(txn, txn.prepare_add_partitions(added, self.clock()))

    def verify_partitions(self, transactional_id: str | None, producer_id: int, producer_epoch: int,
                          partitions: Iterable[TopicPartition]) -> dict[TopicPartition, ErrorCode]:
        """AddPartitionsToTxn v4+ verify_only: for each partition whether it is in the producer's
        transaction (NONE) or not (TRANSACTION_ABORTABLE); raises for them all."""
        txn = self._current(transactional_id, producer_id, producer_epoch)
        if txn.state in _PREPARING:
            raise ApiError(ErrorCode.CONCURRENT_TRANSACTIONS, "the transaction is being completed")
        return {partition: ErrorCode.NONE if partition in txn.partitions else ErrorCode.TRANSACTION_ABORTABLE
                for partition in partitions}

    def _verify(self, transactional_id: str | None, producer_id: int, producer_epoch: int,
                partition: TopicPartition, errors: dict[ErrorCode, ErrorCode]) -> bool:
        """Whether `partition` is in the producer's transaction; a refusal is raised with its code
        in `errors`, or its own."""
        try:
            return self.verify_partitions(transactional_id, producer_id, producer_epoch,
                                          [partition])[partition] is ErrorCode.NONE
        except ApiError as exc:
            code = errors.get(exc.code)
            if code is None:
                raise
            raise ApiError(code, f"cannot verify the transaction: {exc.code.name}") from exc

    async def verify_partition(self, transactional_id: str | None, producer_id: int, producer_epoch: int,
                               topic: str, partition: int) -> None:
        """KIP-890 part 1: a transactional produce to a partition the producer's ongoing
        transaction does not hold is refused (INVALID_TXN_STATE), so that a late or misdirected
        write cannot leave a transaction open. Raises with the codes produce answers (Kafka's
        ReplicaManager): INVALID_PRODUCER_EPOCH for a fenced epoch, INVALID_PRODUCER_ID_MAPPING,
        and NOT_ENOUGH_REPLICAS for what the producer is to retry. (Async as a verification
        with a coordinator elsewhere would be.)"""
        if not self._verify(transactional_id, producer_id, producer_epoch, (topic, partition),
                            _PRODUCE_VERIFICATION_ERRORS):
            raise ApiError(ErrorCode.INVALID_TXN_STATE, "Partition was not added to the transaction")

    def verify_offsets(self, transactional_id: str | None, producer_id: int, producer_epoch: int, group_id: str,
                       *, abortable: bool = False) -> None:
        """KIP-890 part 1 for TxnOffsetCommit: the group's offsets partition must be in the
        producer's transaction (AddOffsetsToTxn first); else INVALID_TXN_STATE, or
        TRANSACTION_ABORTABLE for clients that know it (`abortable`: TxnOffsetCommit v4+)."""
        if not self._verify(transactional_id, producer_id, producer_epoch, offsets_partition(group_id),
                            _VERIFICATION_ERRORS):
            raise ApiError(ErrorCode.TRANSACTION_ABORTABLE if abortable else ErrorCode.INVALID_TXN_STATE,
                           "the group's offsets were not added to the transaction")

    @contextlib.asynccontextmanager
    async def committing_offsets(self, transactional_id: str | None, producer_id: int, producer_epoch: int,
                                 group_id: str, *, abortable: bool = False) -> AsyncIterator[None]:
        """verify_offsets, then hold the transaction's offsets marker back until the block (which
        writes the offsets) ends, so that offsets verified while the transaction was Ongoing land
        before its marker, not after it (Kafka's verification guard)."""
        self.verify_offsets(transactional_id, producer_id, producer_epoch, group_id, abortable=abortable)
        txn = self.transactions[transactional_id]
        txn.offset_commits += 1
        try:
            yield
        finally:
            txn.offset_commits -= 1
            if not txn.offset_commits:
                txn.offset_commits_done.set()
                txn.offset_commits_done = trio.Event()

    # -- EndTxn ---------------------------------------------------------------------------------

    async def end_transaction(self, transactional_id: str | None, producer_id: int, producer_epoch: int,
                              commit: bool) -> tuple[int, int]:
        """EndTxn: commit or abort the producer's transaction; the producer id and epoch after it.
        A retry after the transaction completed the same way is answered as its first call was."""
        self._check_id(transactional_id)
        self._check_active()
        txn = self.transactions.get(transactional_id)
        if txn is None:
            raise ApiError(ErrorCode.INVALID_PRODUCER_ID_MAPPING, f"transactional id {transactional_id} is unknown")
        await self._wait_for_markers(txn)
        await self._end(txn, producer_id, producer_epoch, commit=commit, from_client=True)
        return txn.producer_id, txn.producer_epoch

    async def _end(self, txn: TransactionMetadata, producer_id: int, producer_epoch: int, *, commit: bool,
                   from_client: bool) -> None:
        """End the transaction (Kafka's endTransaction): log PrepareCommit or PrepareAbort, then
        start writing the markers. The coordinator itself aborts (a fenced producer, a timeout)
        with the bumped epoch of a pending PrepareEpochFence."""
        if txn.producer_id != producer_id:
            raise ApiError(ErrorCode.INVALID_PRODUCER_ID_MAPPING, f"producer id {producer_id} is not the one of "
                                                                  f"transactional id {txn.transactional_id}")
        if producer_epoch < txn.producer_epoch or from_client and producer_epoch != txn.producer_epoch:
            raise ApiError(ErrorCode.PRODUCER_FENCED, f"epoch {producer_epoch} is not the current epoch "
                                                      f"{txn.producer_epoch} of transactional id {txn.transactional_id}")
        fencing = txn.pending_state is State.PREPARE_EPOCH_FENCE
        if txn.pending_state is not None and not fencing:
            raise ApiError(ErrorCode.CONCURRENT_TRANSACTIONS, "a state change of the transactional id is in progress")
        if txn.state is not State.ONGOING:
            self._check_end_of(txn, commit)
            return
        if fencing:
            # The fence's epoch is the abort's: a zombie's late requests meet it from now on.
            txn.pending_state = None
            txn.producer_epoch = producer_epoch
            txn.last_producer_epoch = NO_PRODUCER_EPOCH
        try:
            await self._write(txn, txn.prepare_end(commit, self.clock()))
        except ApiError:
            if fencing:
                txn.has_failed_epoch_fence = True
            raise
        logger.debug("transactional id %s: %s, writing markers to %d partition(s)", txn.transactional_id,
                     txn.state.label, len(txn.partitions))
        self._start_completion(txn)

    @staticmethod
    async def _wait_for_markers(txn: TransactionMetadata) -> None:
        """Wait a while for the markers of a PrepareCommit/PrepareAbort (at once if there are
        none being written); what still meets it is answered CONCURRENT_TRANSACTIONS."""
        if txn.state in _PREPARING and txn.completed is not None:
            with trio.move_on_after(MARKERS_WAIT_SECONDS):
                await txn.completed.wait()

    @staticmethod
    def _check_end_of(txn: TransactionMetadata, commit: bool) -> None:
        """EndTxn of a transaction not Ongoing: its retry once it completed as asked is answered
        NONE; while it is being completed as asked, CONCURRENT_TRANSACTIONS; else INVALID_TXN_STATE."""
        done, completing = ((State.COMPLETE_COMMIT, State.PREPARE_COMMIT) if commit
                            else (State.COMPLETE_ABORT, State.PREPARE_ABORT))
        if txn.state is done:
            return
        if txn.state is completing:
            raise ApiError(ErrorCode.CONCURRENT_TRANSACTIONS, "the transaction is being completed")
        if txn.state in (State.DEAD, State.PREPARE_EPOCH_FENCE):
            raise RuntimeError(f"transactional id {txn.transactional_id} is {txn.state.label}, never a current state")
        raise ApiError(ErrorCode.INVALID_TXN_STATE,
                       f"cannot {'commit' if commit else 'abort'}: the transaction is {txn.state.label}")

    def _start_completion(self, txn: TransactionMetadata) -> None:
        """Write the markers of a PrepareCommit/PrepareAbort, then log its completion (`txn.completed`)."""
        transition = txn.prepare_complete(self.clock())
        done = txn.completed = trio.Event()
        if not self._spawn(self._complete, txn, transition, done):
            done.set()

    async def _complete(self, txn: TransactionMetadata, transition: Transition, done: trio.Event) -> None:
        commit = transition.state is State.COMPLETE_COMMIT
        try:
            while not await self._write_markers(txn, commit):
                await trio.sleep(MARKER_RETRY_SECONDS)
            self._marker_failures.succeeded()
            while True:
                try:
                    await self._append(txn, transition)
                    break
                except LogError:
                    # Pending still: the markers are written, only the completion is to log.
                    await trio.sleep(MARKER_RETRY_SECONDS)
            txn.complete(transition)
            self._settle(txn)
            logger.debug("transactional id %s: %s", txn.transactional_id, txn.state.label)
        finally:
            done.set()

    async def _write_markers(self, txn: TransactionMetadata, commit: bool) -> bool:
        """Write the markers of the partitions that still need one (Kafka's marker channel): a
        partition is done once written, or deleted meanwhile; whether all are done."""
        for partition in sorted(txn.partitions):
            try:
                await self._write_marker(txn, partition, commit)
            except ApiError as exc:
                if exc.code not in _MARKER_NOT_NEEDED:
                    self._marker_failures.failed(f"transactional id {txn.transactional_id}, "
                                                 f"{partition[0]}-{partition[1]}: {exc.code.name} {exc.message}")
                    continue
                # The partition has a later epoch of the producer: its transaction there ended.
                # Kafka stops writing this transaction's markers then, to leave them to a newer
                # coordinator; with no other coordinator, the other partitions still get theirs.
                logger.warning("transactional id %s: %s-%d needs no marker of epoch %d (%s)", txn.transactional_id,
                               *partition, txn.producer_epoch, exc.code.name)
            txn.partitions.discard(partition)
        return not txn.partitions

    async def _write_marker(self, txn: TransactionMetadata, topic_partition: TopicPartition, commit: bool) -> None:
        if topic_partition == OFFSETS_PARTITION:
            while txn.offset_commits:
                await txn.offset_commits_done.wait()
            await self._groups.complete_transaction(txn.producer_id, txn.producer_epoch, commit)
            return
        partition = self._partition(*topic_partition)
        if partition is None:
            logger.info("transactional id %s: %s-%d is gone, it needs no marker", txn.transactional_id,
                        *topic_partition)
        elif partition.write_marker(txn.producer_id, txn.producer_epoch, COORDINATOR_EPOCH, commit):
            self._appended(partition)

    # -- done by the coordinator itself ---------------------------------------------------------

    async def _abort_by_coordinator(self, txn: TransactionMetadata, reason: str) -> None:
        """Abort an Ongoing transaction with a bumped epoch, fencing its producer (Kafka's
        abortTimedOutTransactions); retried later if the log cannot take it."""
        if self.transactions.get(txn.transactional_id) is not txn or txn.pending_state is not None \
                or txn.state is not State.ONGOING:
            return
        logger.info("transactional id %s: aborting the transaction of producer id %d, epoch %d: %s",
                    txn.transactional_id, txn.producer_id, txn.producer_epoch, reason)
        fence = txn.prepare_fence_epoch()
        try:
            await self._end(txn, fence.producer_id, fence.producer_epoch, commit=False, from_client=False)
        except ApiError as exc:
            logger.warning("transactional id %s: cannot abort its transaction yet (%s)", txn.transactional_id,
                           exc.code.name)
            if txn.deadline is not None:
                txn.deadline.reset(ABORT_RETRY_SECONDS)

    async def _expire(self, txn: TransactionMetadata) -> None:
        """Forget an id idle for transactional.id.expiration.ms (a tombstone in the log)."""
        if self.transactions.get(txn.transactional_id) is not txn or txn.pending_state is not None \
                or txn.state not in _EXPIRABLE:
            return
        transition = txn.prepare_dead()
        try:
            await self._append(txn, transition)
        except LogError:
            txn.pending_state = None
            if txn.deadline is not None:
                txn.deadline.reset(EXPIRATION_RETRY_SECONDS)
            return
        del self.transactions[txn.transactional_id]
        logger.info("transactional id %s: expired after %d ms without a transaction", txn.transactional_id,
                    self.id_expiration_ms)

    # -- administration -------------------------------------------------------------------------

    def describe(self, transactional_id: str) -> TransactionMetadata:
        """DescribeTransactions: the id's current state."""
        if self._closed:
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        self._check_id(transactional_id)
        txn = self.transactions.get(transactional_id)
        if txn is None or txn.state is State.DEAD:
            raise ApiError(ErrorCode.TRANSACTIONAL_ID_NOT_FOUND)
        return txn

    def list_transactions(self, states: Iterable[str], producer_ids: Iterable[int],
                          duration_ms: int = -1) -> tuple[list[TransactionMetadata], list[str]]:
        """ListTransactions: the ids in any of `states` (Kafka's names), of any of `producer_ids`,
        and (`duration_ms` >= 0) whose transaction began longer ago than that; empty filters let
        all through. Also the state names that are none of Kafka's."""
        if self._closed:
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        states, producer_ids = list(states), set(producer_ids)
        unknown = [name for name in states if name not in _STATES_BY_LABEL]
        wanted = {_STATES_BY_LABEL[name] for name in states if name in _STATES_BY_LABEL}
        now = self.clock()
        return [txn for txn in self.transactions.values()
                if txn.state is not State.DEAD
                and (not producer_ids or txn.producer_id in producer_ids)
                and (not states or txn.state in wanted)
                and (duration_ms < 0 or now - txn.start_ms > duration_ms)], unknown
