"""The group coordinator: Kafka's classic group protocol, with this broker coordinating every group.

Follows Kafka's GroupCoordinator: a group moves Empty -> PreparingRebalance (members (re)join)
-> CompletingRebalance (the leader computes assignments) -> Stable (SyncGroup handed them out),
and back to PreparingRebalance whenever membership or metadata changes. JoinGroup and SyncGroup
requests park until the phase they wait for completes, each on a one-answer memory channel;
timeouts (session, rebalance, sync, the initial rebalance delay) are deadlines (timers.py) in the
nursery of `run()`.

A refused request raises ApiError; batch operations (LeaveGroup, OffsetCommit, TxnOffsetCommit,
OffsetFetch, DeleteGroups, OffsetDelete) raise for the whole request and give an `Outcome` per
member, partition or group.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from outcome import Error, Outcome, Value

from broker.groups.group import (
    Group,
    GroupState,
    JoinResult,
    Member,
    MemberIdentity,
    SyncResult,
    wait_for_answer,
)
from broker.groups.offsets import OffsetAndMetadata, OffsetStore, TopicPartition, fits_in_key
from broker.groups.timers import Deadlines
from broker.registry import CloseOutcome
from broker.storage_failures import RepeatedFailure
from log import LogError, LogStorageError, RecordBatchTooLargeError, current_time_ms
from protocol.errors import ApiError, ErrorCode

logger = logging.getLogger(__name__)

UNKNOWN_MEMBER_ID = ""
# Kafka's defaults for group.min.session.timeout.ms and group.max.session.timeout.ms.
MIN_SESSION_TIMEOUT_MS = 6000
MAX_SESSION_TIMEOUT_MS = 30 * 60 * 1000
# Kafka's offset.metadata.max.bytes.
OFFSET_METADATA_MAX_BYTES = 4096
# How long a new member may wait in a rebalance before it is dropped (it cannot heartbeat yet).
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
# Kafka's offsets.retention.check.interval.ms: how often empty groups without offsets are dropped.
EMPTY_GROUP_CLEANUP_INTERVAL_MS = 10 * 60 * 1000
CLASSIC_GROUP_TYPE = "classic"


class MemberIdRequired(ApiError):
    """JoinGroup v4+: a new dynamic member must join again with the member id it is given."""

    def __init__(self, member_id: str) -> None:
        super().__init__(ErrorCode.MEMBER_ID_REQUIRED)
        self.member_id = member_id


@dataclasses.dataclass(frozen=True)
class JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    # JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and its id.
    require_known_member_id: bool
    # JoinGroup v9+: a static leader rejoining a stable group may be told to skip assigning.
    supports_skip_assignment: bool
    reason: str | None = None


@dataclasses.dataclass
class MemberSummary(MemberIdentity):
    metadata: bytes
    assignment: bytes


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    group_id: str
    state: str
    protocol_type: str
    protocol_name: str
    members: tuple[MemberSummary, ...] = ()


@dataclasses.dataclass(frozen=True)
class GroupOverview:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = CLASSIC_GROUP_TYPE


async def _attempt(operation: Callable[..., Awaitable[None]], *args) -> Outcome[None]:
    """The outcome of one part of a batch operation: done, or refused with an ApiError."""
    try:
        return Value(await operation(*args))
    except ApiError as exc:
        return Error(exc)


def _moved() -> Outcome:
    # A new outcome for each parked request: an outcome can be unwrapped only once.
    return Error(ApiError(ErrorCode.NOT_COORDINATOR))


def _parked() -> tuple[trio.MemorySendChannel, trio.MemoryReceiveChannel]:
    """Where a JoinGroup or SyncGroup waits for its one answer."""
    return trio.open_memory_channel(1)


class GroupCoordinator:
    def __init__(self, offsets: OffsetStore, *, initial_rebalance_delay_ms: int = 0,
                 clock: Callable[[], int] = current_time_ms) -> None:
        self.offsets = offsets
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        # Wall-clock milliseconds: the commit time of offsets committed without one.
        self.clock = clock
        # Groups known only from their committed offsets start Empty, as after a Kafka restart.
        self.groups: dict[str, Group] = {group_id: Group(group_id) for group_id in offsets.group_ids()}
        self._deadlines = Deadlines()
        self._active = True
        # Clients retry a refused commit within milliseconds: reported once per interval.
        self._commit_failures = RepeatedFailure(logger, "cannot write committed offsets, answering NOT_COORDINATOR")

    @classmethod
    def open(cls, data_dir: Path, *, initial_rebalance_delay_ms: int = 0, fsync_commits: bool = False,
             clock: Callable[[], int] = current_time_ms) -> GroupCoordinator:
        """A coordinator over the offsets log in `data_dir`, replayed."""
        return cls(OffsetStore(data_dir, fsync=fsync_commits, clock=clock),
                   initial_rebalance_delay_ms=initial_rebalance_delay_ms, clock=clock)

    @property
    def active(self) -> bool:
        """False once unloaded at shutdown."""
        return self._active

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run the timeouts until cancelled; a failing timeout callback (a bug) fails this task."""
        self._deadlines.after(EMPTY_GROUP_CLEANUP_INTERVAL_MS / 1000, self._clean_up_empty_groups)
        await self._deadlines.run(task_status=task_status)

    def unload(self) -> None:
        """Stop coordinating (shutdown): parked requests are answered NOT_COORDINATOR, as when Kafka
        moves a group to another coordinator, so clients look for the coordinator again."""
        self._active = False
        for group in self.groups.values():
            previous = group.state
            group.transition_to(GroupState.DEAD)
            for member in group.members.values():
                if previous is GroupState.PREPARING_REBALANCE:
                    group.invoke_join(member, _moved())
                group.invoke_sync(member, _moved())

    def close(self, outcome: CloseOutcome | None = None) -> None:
        """Close the offsets log (blocking on fsyncs), noting in `outcome` what could not be written."""
        self.offsets.close(outcome)

    # -- validation ------------------------------------------------------------------------------

    def _check_group_id(self, group_id: str | None, *, empty_allowed: bool = False) -> None:
        # Offset and admin APIs accept the empty group id, for compatibility, as Kafka does.
        if group_id is None or not (group_id or empty_allowed) or not fits_in_key(group_id):
            raise ApiError(ErrorCode.INVALID_GROUP_ID)
        if not self._active:
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE)

    def _known_group(self, group_id: str) -> Group:
        """The group of a request naming a member: none means the member is unknown."""
        self._check_group_id(group_id)
        group = self.groups.get(group_id)
        if group is None:
            raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID)
        return group

    @staticmethod
    def _check_member(group: Group, member_id: str, group_instance_id: str | None) -> None:
        """A static member must be the instance's current member id; any other must be a member."""
        if group_instance_id is not None:
            current = group.static_members.get(group_instance_id)
            if current is None:
                raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID)
            if current != member_id:
                raise ApiError(ErrorCode.FENCED_INSTANCE_ID)
        elif member_id not in group.members:
            raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID)

    def _check_generation_member(self, group: Group, generation_id: int, member_id: str,
                                 group_instance_id: str | None) -> None:
        if group.state is GroupState.DEAD:
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        self._check_member(group, member_id, group_instance_id)
        if generation_id != group.generation_id:
            raise ApiError(ErrorCode.ILLEGAL_GENERATION)

    # -- JoinGroup -------------------------------------------------------------------------------

    async def join_group(self, request: JoinRequest) -> JoinResult:
        self._check_group_id(request.group_id)
        if not MIN_SESSION_TIMEOUT_MS <= request.session_timeout_ms <= MAX_SESSION_TIMEOUT_MS:
            raise ApiError(ErrorCode.INVALID_SESSION_TIMEOUT)
        is_new_member = request.member_id == UNKNOWN_MEMBER_ID
        group = self.groups.get(request.group_id)
        if group is None:
            # Only a member without an id creates a group; a member id for no group is stale.
            if not is_new_member:
                raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID)
            group = self.groups[request.group_id] = Group(request.group_id)
        if group.state is GroupState.DEAD:
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if not group.supports_protocols(request.protocol_type, [name for name, _ in request.protocols]):
            raise ApiError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        logger.debug("group %s: JoinGroup from member %r (client %s) in state %s",
                     group.group_id, request.member_id, request.client_id, group.state.value)
        reply, answer = _parked()
        if is_new_member:
            self._join_new_member(group, request, reply)
        else:
            self._join_current_member(group, request, reply)
        if group.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(group)
        return await wait_for_answer(answer)

    def _join_new_member(self, group: Group, request: JoinRequest, reply: trio.MemorySendChannel) -> None:
        new_member_id = f"{request.group_instance_id or request.client_id}-{uuid.uuid4()}"
        if request.group_instance_id is not None:
            old_member_id = group.static_members.get(request.group_instance_id)
            if old_member_id is not None:
                self._replace_static_member(group, old_member_id, new_member_id, request, reply)
            else:
                self._add_member_and_rebalance(group, new_member_id, request, reply)
        elif request.require_known_member_id:
            # Not a member until it joins with the id: until then only its session timeout runs.
            group.pending_members[new_member_id] = self._deadlines.after(
                request.session_timeout_ms / 1000, lambda: self._expire_pending_member(group, new_member_id))
            logger.debug("group %s: new member of client %s must join again as pending member %s",
                         group.group_id, request.client_id, new_member_id)
            raise MemberIdRequired(new_member_id)
        else:
            self._add_member_and_rebalance(group, new_member_id, request, reply)

    def _join_current_member(self, group: Group, request: JoinRequest, reply: trio.MemorySendChannel) -> None:
        member_id = request.member_id
        if member_id in group.pending_members:
            if request.group_instance_id is not None:
                # Pending ids are only given to dynamic members; Kafka fails such a request outright.
                raise ApiError(ErrorCode.UNKNOWN_SERVER_ERROR)
            self._add_member_and_rebalance(group, member_id, request, reply)
            return
        self._check_member(group, member_id, request.group_instance_id)
        member = group.members[member_id]
        if group.state is GroupState.PREPARING_REBALANCE:
            self._update_member_and_rebalance(group, member, request, reply)
        elif group.state is GroupState.COMPLETING_REBALANCE:
            if member.matches(request.protocols):
                # The member missed the JoinGroup response: give it the current generation again.
                reply.send_nowait(Value(self._join_result(group, member_id)))
            else:
                self._update_member_and_rebalance(group, member, request, reply)
        elif group.is_leader(member_id) or not member.matches(request.protocols):
            # Stable: the leader rejoins to make the group rebalance (e.g. for topic changes).
            self._update_member_and_rebalance(group, member, request, reply)
        else:
            reply.send_nowait(Value(self._join_result(group, member_id, with_members=False)))

    def _join_result(self, group: Group, member_id: str, *, with_members: bool = True,
                     leader_id: str | None = None, skip_assignment: bool = False) -> JoinResult:
        """The current generation as `member_id` sees it: only the leader is sent the members."""
        members = group.current_member_metadata() if with_members and group.is_leader(member_id) else ()
        return JoinResult(member_id, group.generation_id, group.protocol_type, group.protocol_name,
                          leader_id if leader_id is not None else group.leader_id or "", skip_assignment, members)

    def _add_member_and_rebalance(self, group: Group, member_id: str, request: JoinRequest,
                                  reply: trio.MemorySendChannel) -> None:
        member = Member(member_id, request.group_instance_id, request.client_id, request.client_host,
                        request.rebalance_timeout_ms, request.session_timeout_ms, request.protocol_type,
                        request.protocols, is_new=True)
        if group.state is GroupState.PREPARING_REBALANCE and group.generation_id == 0:
            group.new_member_added = True
        group.add(member, reply)
        # A new member cannot heartbeat while its JoinGroup is parked: it gets a long deadline
        # instead, so that members whose clients gave up do not linger in the rebalance forever.
        self._extend_session(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance(group, f"member {member_id} joined")

    def _update_member_and_rebalance(self, group: Group, member: Member, request: JoinRequest,
                                     reply: trio.MemorySendChannel) -> None:
        if member.awaiting_join is not None:
            logger.debug("group %s: member %s sent JoinGroup again while its last one waits",
                         group.group_id, member.member_id)
        group.update_member(member, request.protocols, request.rebalance_timeout_ms, request.session_timeout_ms, reply)
        self._maybe_prepare_rebalance(group, f"member {member.member_id} rejoined")

    def _replace_static_member(self, group: Group, old_member_id: str, new_member_id: str,
                               request: JoinRequest, reply: trio.MemorySendChannel) -> None:
        """A static member restarted (it has no member id): it takes over its old place."""
        current_leader = group.leader_id or ""
        member = group.replace_static_member(request.group_instance_id, old_member_id, new_member_id)
        group.update_member(member, request.protocols, request.rebalance_timeout_ms, request.session_timeout_ms, reply)
        self._extend_session(group, member, member.session_timeout_ms)
        if group.state is GroupState.STABLE:
            if group.protocol_name != group.select_protocol():
                self._maybe_prepare_rebalance(group, f"static member {new_member_id} changed the group's protocol")
            elif request.supports_skip_assignment:
                # v9+: the leader learns it leads, but must not reassign a stable group.
                is_leader = group.is_leader(new_member_id)
                group.invoke_join(member, Value(self._join_result(group, new_member_id, with_members=is_leader,
                                                                  skip_assignment=is_leader)))
            else:
                # Before v9 the old leader id is returned, so a rejoining leader does not assign
                # (a stable group would not hand out a new assignment).
                group.invoke_join(member, Value(self._join_result(group, new_member_id, with_members=False,
                                                                  leader_id=current_leader)))
        elif group.state is GroupState.COMPLETING_REBALANCE:
            # The leader may be assigning to the old member id: start over.
            self._prepare_rebalance(group, f"static member {new_member_id} rejoined during CompletingRebalance")

    def _maybe_prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.can_rebalance:
            self._prepare_rebalance(group, reason)

    def _prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.state is GroupState.COMPLETING_REBALANCE:
            self._reset_and_propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS)
        self._cancel_sync_expiry(group)
        was_empty = group.state is GroupState.EMPTY
        group.transition_to(GroupState.PREPARING_REBALANCE)
        logger.info("preparing to rebalance group %s with old generation %d (%s)",
                    group.group_id, group.generation_id, reason)
        if was_empty:
            # The first members of an empty group wait a little for others, so that a fleet of
            # consumers starting together needs one rebalance rather than one each.
            delay = self.initial_rebalance_delay_ms
            self._schedule_initial_join(group, delay, max(group.rebalance_timeout_ms - delay, 0))
        else:
            self._schedule_join(group, lambda: self._complete_join(group), group.rebalance_timeout_ms, initial=False)
            self._try_complete_join(group)

    def _schedule_join(self, group: Group, callback: Callable[[], None], timeout_ms: int, *, initial: bool) -> None:
        self._cancel_join(group)
        group.join_is_initial = initial
        group.join_deadline = self._deadlines.after(timeout_ms / 1000, callback)

    def _schedule_initial_join(self, group: Group, delay_ms: int, remaining_ms: int) -> None:
        self._schedule_join(group, lambda: self._initial_join_expired(group, delay_ms, remaining_ms), delay_ms,
                            initial=True)

    @staticmethod
    def _cancel_join(group: Group) -> None:
        if group.join_deadline is not None:
            group.join_deadline.cancel()
            group.join_deadline = None

    def _initial_join_expired(self, group: Group, delay_ms: int, remaining_ms: int) -> None:
        group.join_deadline = None
        if group.new_member_added and remaining_ms:
            # Someone joined during the delay: wait once more, within the rebalance timeout.
            group.new_member_added = False
            self._schedule_initial_join(group, min(self.initial_rebalance_delay_ms, remaining_ms),
                                        max(remaining_ms - delay_ms, 0))
        else:
            self._complete_join(group)

    def _try_complete_join(self, group: Group) -> None:
        """End the join phase early once every member has rejoined (never during the initial delay)."""
        if group.join_deadline is not None and not group.join_is_initial and group.has_all_members_joined():
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        self._cancel_join(group)
        for member in [m for m in group.members.values() if m.awaiting_join is None and not m.is_static]:
            # Dynamic members that did not rejoin in time are out; static ones keep their place.
            logger.info("group %s: member %s did not rejoin in time", group.group_id, member.member_id)
            group.remove(member.member_id)
        if group.state is GroupState.DEAD:
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Only static members that have not rejoined are left: wait for them or their expiry.
            self._schedule_join(group, lambda: self._complete_join(group), group.rebalance_timeout_ms, initial=False)
            return
        group.init_next_generation()
        if group.state is GroupState.EMPTY:
            logger.info("group %s with generation %d is now empty", group.group_id, group.generation_id)
            return
        logger.info("group %s stabilized at generation %d with %d member(s), protocol %s",
                    group.group_id, group.generation_id, len(group.members), group.protocol_name)
        for member in group.members.values():
            group.invoke_join(member, Value(self._join_result(group, member.member_id)))
            self._extend_session(group, member, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        generation_id = group.generation_id
        group.sync_deadline = self._deadlines.after(group.rebalance_timeout_ms / 1000,
                                                    lambda: self._sync_expired(group, generation_id))

    # -- SyncGroup -------------------------------------------------------------------------------

    async def sync_group(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                         protocol_type: str | None, protocol_name: str | None,
                         assignments: dict[str, bytes]) -> SyncResult:
        group = self._known_group(group_id)
        self._check_generation_member(group, generation_id, member_id, group_instance_id)
        if ((protocol_type is not None and protocol_type != group.protocol_type)
                or (protocol_name is not None and protocol_name != group.protocol_name)):
            raise ApiError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if group.state is GroupState.EMPTY:
            raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.state is GroupState.PREPARING_REBALANCE:
            raise ApiError(ErrorCode.REBALANCE_IN_PROGRESS)
        member = group.members[member_id]
        self._synced(group, member_id)
        if group.state is GroupState.STABLE:
            self._extend_session(group, member, member.session_timeout_ms)
            return self._sync_result(group, member)
        reply, answer = _parked()
        group.set_awaiting_sync(member, reply)
        if group.is_leader(member_id):
            logger.info("group %s: assignment received from leader %s for generation %d",
                        group.group_id, member_id, group.generation_id)
            # Members the leader left out get an empty assignment; unknown member ids are ignored.
            for each in group.members.values():
                each.assignment = assignments.get(each.member_id, b"")
            self._propagate_assignment(group)
            group.transition_to(GroupState.STABLE)
        return await wait_for_answer(answer)

    @staticmethod
    def _sync_result(group: Group, member: Member) -> SyncResult:
        return SyncResult(member.assignment, group.protocol_type, group.protocol_name)

    def _synced(self, group: Group, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self._cancel_sync_expiry(group)

    @staticmethod
    def _cancel_sync_expiry(group: Group) -> None:
        group.pending_sync.clear()
        if group.sync_deadline is not None:
            group.sync_deadline.cancel()
            group.sync_deadline = None

    def _sync_expired(self, group: Group, generation_id: int) -> None:
        """Members that never sent SyncGroup within the rebalance timeout leave, and the group rebalances."""
        group.sync_deadline = None
        if generation_id != group.generation_id or group.state not in (
                GroupState.COMPLETING_REBALANCE, GroupState.STABLE) or not group.pending_sync:
            return
        late = sorted(group.pending_sync)
        for member_id in late:
            group.remove(member_id)
        self._prepare_rebalance(group, f"members {', '.join(late)} sent no SyncGroup in time")

    def _reset_and_propagate_assignment_error(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        # An outcome apiece: each parked request unwraps its own, and an outcome unwraps once.
        self._propagate(group, lambda member: Error(ApiError(error)))

    def _propagate_assignment(self, group: Group) -> None:
        self._propagate(group, lambda member: Value(self._sync_result(group, member)))

    def _propagate(self, group: Group, answer: Callable[[Member], Outcome[SyncResult]]) -> None:
        for member in group.members.values():
            if group.invoke_sync(member, answer(member)):
                # Its session restarts now: it may have expired, ignored, while the member waited.
                self._extend_session(group, member, member.session_timeout_ms)

    # -- Heartbeat and session expiry ------------------------------------------------------------

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> None:
        group = self._known_group(group_id)
        self._check_generation_member(group, generation_id, member_id, group_instance_id)
        if group.state is GroupState.EMPTY:
            raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID)
        member = group.members[member_id]
        self._extend_session(group, member, member.session_timeout_ms)
        # The heartbeat response is how members learn that they must rejoin.
        if group.state is GroupState.PREPARING_REBALANCE:
            raise ApiError(ErrorCode.REBALANCE_IN_PROGRESS)

    def _extend_session(self, group: Group, member: Member, timeout_ms: int) -> None:
        if member.session is None:
            member.session = self._deadlines.disarmed(lambda: self._session_expired(group, member))
        member.session.reset(timeout_ms / 1000)

    def _session_expired(self, group: Group, member: Member) -> None:
        if group.state is GroupState.DEAD or group.members.get(member.member_id) is not member:
            return
        # A known member waiting in a rebalance is bounded by the rebalance timeout instead.
        if member.is_new or (member.awaiting_join is None and member.awaiting_sync is None):
            logger.info("group %s: member %s sent no heartbeat within %d ms, removing it",
                        group.group_id, member.member_id, member.session_timeout_ms)
            self._remove_member_and_update_group(group, member)

    def _expire_pending_member(self, group: Group, member_id: str) -> None:
        if group.pending_members.pop(member_id, None) is not None:
            logger.info("group %s: pending member %s did not rejoin within its session timeout",
                        group.group_id, member_id)
            self._pending_member_removed(group)

    def _pending_member_removed(self, group: Group) -> None:
        if group.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(group)

    def _remove_member_and_update_group(self, group: Group, member: Member) -> None:
        # A member dropped while its JoinGroup is parked is told so, and may join again.
        group.invoke_join(member, Error(ApiError(ErrorCode.UNKNOWN_MEMBER_ID)))
        group.remove(member.member_id)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group, f"member {member.member_id} left")
        elif group.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(group)

    # -- LeaveGroup ------------------------------------------------------------------------------

    def leave_group(self, group_id: str, leaving: list[tuple[str, str | None]]) -> list[Outcome[None]]:
        """Remove members given as (member id, group instance id); a static member may be named by
        its instance id alone (administrative removal). Raises for the group; an outcome per member."""
        self._check_group_id(group_id)
        group = self.groups.get(group_id)
        if group is None:
            return [Error(ApiError(ErrorCode.UNKNOWN_MEMBER_ID))] * len(leaving)
        if group.state is GroupState.DEAD:
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        results: list[Outcome[None]] = []
        for member_id, instance_id in leaving:
            try:
                results.append(Value(self._leave(group, member_id, instance_id)))
            except ApiError as exc:
                results.append(Error(exc))
        return results

    def _leave(self, group: Group, member_id: str, group_instance_id: str | None) -> None:
        if member_id == UNKNOWN_MEMBER_ID:
            current = group.static_members.get(group_instance_id) if group_instance_id is not None else None
            if current is None:
                raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID)
            member_id = current
        elif member_id in group.pending_members:
            logger.info("group %s: pending member %s left", group.group_id, member_id)
            group.remove_pending_member(member_id)
            self._pending_member_removed(group)
            return
        else:
            self._check_member(group, member_id, group_instance_id)
        logger.info("group %s: member %s left", group.group_id, member_id)
        self._remove_member_and_update_group(group, group.members[member_id])

    # -- offsets ---------------------------------------------------------------------------------

    async def commit_offsets(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                             offsets: dict[TopicPartition, OffsetAndMetadata]) -> dict[TopicPartition, Outcome[None]]:
        """Store committed offsets (of partitions known to exist). Raises what refuses them all (the
        group's errors, a failed write); an outcome per partition otherwise."""
        self._check_group_id(group_id, empty_allowed=True)
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                # A generation of a group that does not exist (any more).
                raise ApiError(ErrorCode.ILLEGAL_GENERATION)
            # A consumer without group management (assign()) or an admin client.
            group = self.groups[group_id] = Group(group_id)
        self._check_offset_commit(group, generation_id, member_id, group_instance_id, transactional=False)
        if group.state is GroupState.COMPLETING_REBALANCE:
            # The member has its new generation but not its assignment yet: it should not commit.
            raise ApiError(ErrorCode.REBALANCE_IN_PROGRESS)
        if group.state in (GroupState.STABLE, GroupState.PREPARING_REBALANCE):
            # A commit counts as a sign of life. During PreparingRebalance commits are still
            # taken: the member learns of the rebalance from its next heartbeat.
            member = group.members[member_id]
            self._extend_session(group, member, member.session_timeout_ms)
        return await self._commit(group_id, offsets, functools.partial(self.offsets.commit, group_id))

    async def commit_transactional_offsets(
            self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
            producer_id: int, producer_epoch: int, offsets: dict[TopicPartition, OffsetAndMetadata],
    ) -> dict[TopicPartition, Outcome[None]]:
        """TxnOffsetCommit: store offsets that stay pending until the producer's transaction ends
        (complete_transaction), with KIP-447's member checks when the request names a member or
        generation. Raises what refuses them all; an outcome per partition otherwise."""
        self._check_group_id(group_id)
        group = self.groups.get(group_id)
        if group is None:
            # As Kafka: a transaction may commit offsets for a group that has not formed yet.
            group = self.groups[group_id] = Group(group_id)
        self._check_offset_commit(group, generation_id, member_id, group_instance_id, transactional=True)
        return await self._commit(group_id, offsets, lambda accepted: self.offsets.commit_transactional(
            group_id, accepted, producer_id, producer_epoch))

    async def complete_transaction(self, producer_id: int, producer_epoch: int, commit: bool) -> bool:
        """Write the producer's COMMIT or ABORT marker to the offsets log: its pending offsets in
        every group become committed or vanish. Whether it had any. Raises ApiError: the marker's
        epoch is older than its offsets' (INVALID_PRODUCER_EPOCH), or the log cannot be written
        (KAFKA_STORAGE_ERROR, as a partition's marker; the transaction coordinator retries)."""
        try:
            return await self.offsets.complete_transaction(producer_id, producer_epoch, commit)
        except LogError as exc:
            logger.error("cannot write the %s marker of producer %d to the offsets log: %s",
                         "COMMIT" if commit else "ABORT", producer_id, exc)
            raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR) from exc

    async def _commit(self, group_id: str, offsets: dict[TopicPartition, OffsetAndMetadata],
                      write: Callable[[dict[TopicPartition, OffsetAndMetadata]], Awaitable[None]],
                      ) -> dict[TopicPartition, Outcome[None]]:
        too_large = Error(ApiError(ErrorCode.OFFSET_METADATA_TOO_LARGE))
        results: dict[TopicPartition, Outcome[None]] = {
            partition: too_large for partition, value in offsets.items()
            if len(value.metadata.encode()) > OFFSET_METADATA_MAX_BYTES}
        accepted = {partition: value for partition, value in offsets.items() if partition not in results}
        if accepted:
            written = await _attempt(self._store, group_id, write, accepted)
            results.update(dict.fromkeys(accepted, written))
        return results

    async def _store(self, group_id: str, write: Callable[[dict[TopicPartition, OffsetAndMetadata]], Awaitable[None]],
                     offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            await write(offsets)
        except RecordBatchTooLargeError as exc:
            raise ApiError(ErrorCode.INVALID_COMMIT_OFFSET_SIZE) from exc
        except LogStorageError as exc:
            # Kafka's GroupMetadataManager answers a KAFKA_STORAGE_ERROR of the offsets
            # log's append with NOT_COORDINATOR: the client finds the coordinator and retries.
            self._commit_failures.failed(f"group {group_id}: {exc}")
            raise ApiError(ErrorCode.NOT_COORDINATOR) from exc
        except LogError as exc:
            logger.exception("group %s: cannot write committed offsets", group_id)
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE) from exc
        self._commit_failures.succeeded()

    def _check_offset_commit(self, group: Group, generation_id: int, member_id: str,
                             group_instance_id: str | None, *, transactional: bool) -> None:
        if group.state is GroupState.DEAD:
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if generation_id < 0 and group.state is GroupState.EMPTY:
            return
        if generation_id >= 0 or member_id != UNKNOWN_MEMBER_ID or group_instance_id is not None:
            self._check_generation_member(group, generation_id, member_id, group_instance_id)
        elif not transactional and group.state is not GroupState.EMPTY:
            # Without a generation, only a group that has no members takes commits. Transactional
            # ones are taken from producers that name no member (before KIP-447) all the same.
            raise ApiError(ErrorCode.UNKNOWN_MEMBER_ID)

    def fetch_offsets(self, group_id: str, partitions: list[TopicPartition] | None, *, require_stable: bool = False
                      ) -> dict[TopicPartition, Outcome[OffsetAndMetadata | None]]:
        """The committed offsets of `partitions` (None: every committed one), whatever the group's
        state: groups may commit without using group management. Offsets of a transaction not
        ended yet are not served; with `require_stable` their partitions are answered
        UNSTABLE_OFFSET_COMMIT instead, so that the consumer waits for the transaction."""
        self._check_group_id(group_id, empty_allowed=True)
        committed = self.offsets.group_offsets(group_id)
        unstable = self.offsets.pending_partitions(group_id) if require_stable else set()
        pending = Error(ApiError(ErrorCode.UNSTABLE_OFFSET_COMMIT))
        return {partition: pending if partition in unstable else Value(committed.get(partition))
                for partition in (committed if partitions is None else partitions)}

    async def delete_offsets(self, group_id: str, partitions: list[TopicPartition]
                             ) -> dict[TopicPartition, Outcome[None]]:
        """OffsetDelete: forget the group's committed offsets of `partitions`, unless its members
        consume them. Raises for the group; an outcome per partition."""
        self._check_group_id(group_id)
        group = self.groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            raise ApiError(ErrorCode.GROUP_ID_NOT_FOUND)
        if group.state is not GroupState.EMPTY and not group.is_consumer_group:
            # Kafka cannot tell what a non-consumer group uses while it has members.
            raise ApiError(ErrorCode.NON_EMPTY_GROUP)
        consumed = Error(ApiError(ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC))
        results: dict[TopicPartition, Outcome[None]] = {
            partition: consumed for partition in partitions
            if group.state is not GroupState.EMPTY and group.is_subscribed_to(partition[0])}
        eligible = [partition for partition in partitions if partition not in results]
        if eligible:
            deleted = await _attempt(self._delete_offsets, group_id, eligible)
            results.update(dict.fromkeys(eligible, deleted))
        return results

    async def _delete_offsets(self, group_id: str, partitions: list[TopicPartition]) -> None:
        removed = await self._write_tombstones(group_id, self.offsets.delete_offsets(group_id, partitions))
        logger.info("group %s: deleted the offsets of %d partition(s)", group_id, removed)
        self._drop_if_unused(group_id)

    @staticmethod
    async def _write_tombstones(group_id: str, tombstones: Awaitable[int]) -> int:
        try:
            return await tombstones
        except LogError as exc:
            logger.exception("group %s: cannot write the tombstones of its offsets", group_id)
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE) from exc

    # -- administration --------------------------------------------------------------------------

    def describe_group(self, group_id: str) -> GroupSummary:
        self._check_group_id(group_id, empty_allowed=True)
        group = self.groups.get(group_id)
        if group is None:
            return GroupSummary(group_id, GroupState.DEAD.value, "", "")
        stable = group.state is GroupState.STABLE
        members = tuple(
            MemberSummary(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                          m.metadata(group.protocol_name) if stable else b"", m.assignment if stable else b"")
            for m in group.members.values())
        return GroupSummary(group_id, group.state.value, group.protocol_type or "",
                            group.protocol_name if stable else "", members)

    def list_groups(self, states: list[str], group_types: list[str]) -> list[GroupOverview]:
        """Groups in any of `states` and of any of `group_types` (empty: no filter), case-insensitively."""
        if not self._active:
            raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        wanted_states = {state.lower() for state in states}
        if group_types and CLASSIC_GROUP_TYPE not in {group_type.lower() for group_type in group_types}:
            return []
        return [GroupOverview(group.group_id, group.protocol_type or "", group.state.value)
                for group in self.groups.values()
                if not wanted_states or group.state.value.lower() in wanted_states]

    async def delete_groups(self, group_ids: list[str]) -> dict[str, Outcome[None]]:
        """Delete empty groups and their committed offsets (leaving tombstones in the offsets log)."""
        return {group_id: await _attempt(self._delete_group, group_id) for group_id in group_ids}

    async def _delete_group(self, group_id: str) -> None:
        self._check_group_id(group_id, empty_allowed=True)
        group = self.groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            raise ApiError(ErrorCode.GROUP_ID_NOT_FOUND)
        if group.state is not GroupState.EMPTY:
            raise ApiError(ErrorCode.NON_EMPTY_GROUP)
        # Dead at once, so that a member joining meanwhile starts a new group.
        group.transition_to(GroupState.DEAD)
        del self.groups[group_id]
        try:
            removed = await self._write_tombstones(group_id, self.offsets.delete_group(group_id))
        except ApiError:
            # Its offsets are still committed: the group stays, empty.
            self.groups.setdefault(group_id, Group(group_id))
            raise
        logger.info("deleted group %s and the offsets of its %d partition(s)", group_id, removed)

    def _clean_up_empty_groups(self) -> None:
        """Forget groups that are empty and have no offsets, committed or pending, as Kafka does periodically."""
        for group_id in list(self.groups):
            self._drop_if_unused(group_id)
        self._deadlines.after(EMPTY_GROUP_CLEANUP_INTERVAL_MS / 1000, self._clean_up_empty_groups)

    def _drop_if_unused(self, group_id: str) -> None:
        """As Kafka's offset clean-up: an empty group without offsets is gone."""
        group = self.groups.get(group_id)
        if group is not None and group.state is GroupState.EMPTY and not self.offsets.has_offsets(group_id):
            group.transition_to(GroupState.DEAD)
            del self.groups[group_id]
