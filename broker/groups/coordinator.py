"""The group coordinator: Kafka's classic group protocol, with this broker coordinating every group.

Follows Kafka's GroupCoordinator: a group moves Empty -> PreparingRebalance (members (re)join)
-> CompletingRebalance (the leader computes assignments) -> Stable (SyncGroup handed them out),
and back to PreparingRebalance whenever membership or metadata changes. JoinGroup and SyncGroup
requests park until the phase they wait for completes; timeouts (session, rebalance, sync, the
initial rebalance delay) run on trio's clock from the task running `run()`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from pathlib import Path

from broker.groups.group import (
    Group,
    GroupState,
    JoinResult,
    Member,
    Reply,
    SyncResult,
)
from broker.groups.offsets import OffsetAndMetadata, OffsetStore, TopicPartition, fits_in_key
from broker.groups.timers import DeadlineQueue
from broker.registry import CloseOutcome
from broker.storage_failures import RepeatedFailure
from log import LogError, LogStorageError, RecordBatchTooLargeError
from protocol.errors import ErrorCode

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


@dataclasses.dataclass(frozen=True)
class MemberSummary:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
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


class GroupCoordinator:
    def __init__(self, offsets: OffsetStore, *, initial_rebalance_delay_ms: int = 0) -> None:
        self.offsets = offsets
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        # Groups known only from their committed offsets start Empty, as after a Kafka restart.
        self.groups: dict[str, Group] = {group_id: Group(group_id) for group_id in offsets.group_ids()}
        self._timers = DeadlineQueue()
        self._active = True
        # Clients retry a refused commit within milliseconds: reported once per interval.
        self._commit_failures = RepeatedFailure(logger, "cannot write committed offsets, answering NOT_COORDINATOR")

    @classmethod
    def open(cls, data_dir: Path, *, initial_rebalance_delay_ms: int = 0,
             fsync_commits: bool = False) -> GroupCoordinator:
        """A coordinator over the offsets log in `data_dir`, replayed."""
        return cls(OffsetStore(data_dir, fsync=fsync_commits), initial_rebalance_delay_ms=initial_rebalance_delay_ms)

    @property
    def active(self) -> bool:
        """False once unloaded at shutdown."""
        return self._active

    async def run(self) -> None:
        """Run the timeouts until cancelled."""
        self._schedule_empty_group_cleanup()
        await self._timers.run()

    def unload(self) -> None:
        """Stop coordinating (shutdown): parked requests are answered NOT_COORDINATOR, as when Kafka
        moves a group to another coordinator, so clients look for the coordinator again."""
        self._active = False
        for group in self.groups.values():
            previous = group.state
            group.transition_to(GroupState.DEAD)
            for member in group.members.values():
                if previous is GroupState.PREPARING_REBALANCE:
                    group.invoke_join(member, JoinResult(ErrorCode.NOT_COORDINATOR, member.member_id))
                group.invoke_sync(member, SyncResult(ErrorCode.NOT_COORDINATOR))

    def close(self, outcome: CloseOutcome | None = None) -> None:
        """Close the offsets log (blocking on fsyncs), noting in `outcome` what could not be written."""
        self.offsets.close(outcome)

    # -- validation ------------------------------------------------------------------------------

    def _group_status_error(self, group_id: str | None, *, empty_allowed: bool = False) -> ErrorCode | None:
        # Offset and admin APIs accept the empty group id, for compatibility, as Kafka does.
        if group_id is None or not (group_id or empty_allowed) or not fits_in_key(group_id):
            return ErrorCode.INVALID_GROUP_ID
        if not self._active:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        return None

    @staticmethod
    def _member_error(group: Group, member_id: str, group_instance_id: str | None) -> ErrorCode | None:
        """A static member must be the instance's current member id; any other must be a member."""
        if group_instance_id is not None:
            current = group.static_members.get(group_instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            return ErrorCode.FENCED_INSTANCE_ID if current != member_id else None
        return None if member_id in group.members else ErrorCode.UNKNOWN_MEMBER_ID

    def _generation_member_error(self, group: Group, generation_id: int, member_id: str,
                                 group_instance_id: str | None) -> ErrorCode | None:
        if group.state is GroupState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = self._member_error(group, member_id, group_instance_id)
        if error is None and generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        return error

    # -- JoinGroup -------------------------------------------------------------------------------

    async def join_group(self, request: JoinRequest) -> JoinResult:
        error = self._group_status_error(request.group_id)
        if error is not None:
            return JoinResult(error, request.member_id)
        if not MIN_SESSION_TIMEOUT_MS <= request.session_timeout_ms <= MAX_SESSION_TIMEOUT_MS:
            return JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT, request.member_id)
        is_new_member = request.member_id == UNKNOWN_MEMBER_ID
        group = self.groups.get(request.group_id)
        if group is None:
            # Only a member without an id creates a group; a member id for no group is stale.
            if not is_new_member:
                return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, request.member_id)
            group = self.groups[request.group_id] = Group(request.group_id)
        reply: Reply[JoinResult] = Reply()
        if is_new_member:
            self._join_new_member(group, request, reply)
        else:
            self._join_current_member(group, request, reply)
        if group.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(group)
        return await reply.wait()

    def _join_new_member(self, group: Group, request: JoinRequest, reply: Reply[JoinResult]) -> None:
        if group.state is GroupState.DEAD:
            reply.send(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER_ID))
        elif not group.supports_protocols(request.protocol_type, [name for name, _ in request.protocols]):
            reply.send(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER_ID))
        else:
            new_member_id = f"{request.group_instance_id or request.client_id}-{uuid.uuid4()}"
            if request.group_instance_id is not None:
                old_member_id = group.static_members.get(request.group_instance_id)
                if old_member_id is not None:
                    self._replace_static_member(group, old_member_id, new_member_id, request, reply)
                else:
                    self._add_member_and_rebalance(group, new_member_id, request, reply)
            elif request.require_known_member_id:
                group.pending_members[new_member_id] = self._timers.call_after(
                    request.session_timeout_ms / 1000,
                    functools.partial(self._expire_pending_member, group, new_member_id))
                reply.send(JoinResult(ErrorCode.MEMBER_ID_REQUIRED, new_member_id))
            else:
                self._add_member_and_rebalance(group, new_member_id, request, reply)

    def _join_current_member(self, group: Group, request: JoinRequest, reply: Reply[JoinResult]) -> None:
        member_id = request.member_id
        if group.state is GroupState.DEAD:
            reply.send(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id))
        elif not group.supports_protocols(request.protocol_type, [name for name, _ in request.protocols]):
            reply.send(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
        elif member_id in group.pending_members:
            if request.group_instance_id is not None:
                # Pending ids are only given to dynamic members; Kafka fails such a request outright.
                reply.send(JoinResult(ErrorCode.UNKNOWN_SERVER_ERROR, member_id))
            else:
                self._add_member_and_rebalance(group, member_id, request, reply)
        else:
            error = self._member_error(group, member_id, request.group_instance_id)
            if error is not None:
                reply.send(JoinResult(error, member_id))
                return
            member = group.members[member_id]
            if group.state is GroupState.PREPARING_REBALANCE:
                self._update_member_and_rebalance(group, member, request, reply)
            elif group.state is GroupState.COMPLETING_REBALANCE:
                if member.matches(request.protocols):
                    # The member missed the JoinGroup response: give it the current generation again.
                    reply.send(self._join_result(group, member_id))
                else:
                    self._update_member_and_rebalance(group, member, request, reply)
            elif group.is_leader(member_id) or not member.matches(request.protocols):
                # Stable: the leader rejoins to make the group rebalance (e.g. for topic changes).
                self._update_member_and_rebalance(group, member, request, reply)
            else:
                reply.send(self._join_result(group, member_id, with_members=False))

    def _join_result(self, group: Group, member_id: str, *, with_members: bool = True,
                     leader_id: str | None = None, skip_assignment: bool = False) -> JoinResult:
        """The current generation as `member_id` sees it: only the leader is sent the members."""
        members = group.current_member_metadata() if with_members and group.is_leader(member_id) else ()
        return JoinResult(ErrorCode.NONE, member_id, group.generation_id, group.protocol_type, group.protocol_name,
                          leader_id if leader_id is not None else group.leader_id or "", skip_assignment, members)

    def _add_member_and_rebalance(self, group: Group, member_id: str, request: JoinRequest,
                                  reply: Reply[JoinResult]) -> None:
        member = Member(member_id, request.group_instance_id, request.client_id, request.client_host,
                        request.rebalance_timeout_ms, request.session_timeout_ms, request.protocol_type,
                        request.protocols, is_new=True)
        if group.state is GroupState.PREPARING_REBALANCE and group.generation_id == 0:
            group.new_member_added = True
        group.add(member, reply)
        # A new member cannot heartbeat while its JoinGroup is parked: it gets a long deadline
        # instead, so that members whose clients gave up do not linger in the rebalance forever.
        self._schedule_heartbeat_expiry(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance(group, f"member {member_id} joined")

    def _update_member_and_rebalance(self, group: Group, member: Member, request: JoinRequest,
                                     reply: Reply[JoinResult]) -> None:
        group.update_member(member, request.protocols, request.rebalance_timeout_ms, request.session_timeout_ms, reply)
        self._maybe_prepare_rebalance(group, f"member {member.member_id} rejoined")

    def _replace_static_member(self, group: Group, old_member_id: str, new_member_id: str,
                               request: JoinRequest, reply: Reply[JoinResult]) -> None:
        """A static member restarted (it has no member id): it takes over its old place."""
        current_leader = group.leader_id or ""
        member = group.replace_static_member(request.group_instance_id, old_member_id, new_member_id)
        group.update_member(member, request.protocols, request.rebalance_timeout_ms, request.session_timeout_ms, reply)
        self._schedule_heartbeat_expiry(group, member, member.session_timeout_ms)
        if group.state is GroupState.STABLE:
            if group.protocol_name != group.select_protocol():
                self._maybe_prepare_rebalance(group, f"static member {new_member_id} changed the group's protocol")
            elif request.supports_skip_assignment:
                # v9+: the leader learns it leads, but must not reassign a stable group.
                is_leader = group.is_leader(new_member_id)
                group.invoke_join(member, self._join_result(group, new_member_id, with_members=is_leader,
                                                            skip_assignment=is_leader))
            else:
                # Before v9 the old leader id is returned, so a rejoining leader does not assign
                # (a stable group would not hand out a new assignment).
                group.invoke_join(member, self._join_result(group, new_member_id, with_members=False,
                                                            leader_id=current_leader))
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
            self._schedule_join(group, group.rebalance_timeout_ms)
            self._try_complete_join(group)

    def _schedule_join(self, group: Group, timeout_ms: int) -> None:
        self._cancel_join(group)
        group.join_is_initial = False
        group.join_timer = self._timers.call_after(timeout_ms / 1000, functools.partial(self._complete_join, group))

    def _schedule_initial_join(self, group: Group, delay_ms: int, remaining_ms: int) -> None:
        self._cancel_join(group)
        group.join_is_initial = True
        group.join_timer = self._timers.call_after(
            delay_ms / 1000, functools.partial(self._initial_join_expired, group, delay_ms, remaining_ms))

    @staticmethod
    def _cancel_join(group: Group) -> None:
        if group.join_timer is not None:
            group.join_timer.cancel()
            group.join_timer = None

    def _initial_join_expired(self, group: Group, delay_ms: int, remaining_ms: int) -> None:
        group.join_timer = None
        if group.new_member_added and remaining_ms:
            # Someone joined during the delay: wait once more, within the rebalance timeout.
            group.new_member_added = False
            self._schedule_initial_join(group, min(self.initial_rebalance_delay_ms, remaining_ms),
                                        max(remaining_ms - delay_ms, 0))
        else:
            self._complete_join(group)

    def _try_complete_join(self, group: Group) -> None:
        """End the join phase early once every member has rejoined (never during the initial delay)."""
        if group.join_timer is not None and not group.join_is_initial and group.has_all_members_joined():
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
            self._schedule_join(group, group.rebalance_timeout_ms)
            return
        group.init_next_generation()
        if group.state is GroupState.EMPTY:
            logger.info("group %s with generation %d is now empty", group.group_id, group.generation_id)
            return
        logger.info("group %s stabilized at generation %d with %d member(s), protocol %s",
                    group.group_id, group.generation_id, len(group.members), group.protocol_name)
        for member in group.members.values():
            group.invoke_join(member, self._join_result(group, member.member_id))
            self._schedule_heartbeat_expiry(group, member, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        group.sync_timer = self._timers.call_after(
            group.rebalance_timeout_ms / 1000,
            functools.partial(self._sync_expired, group, group.generation_id))

    # -- SyncGroup -------------------------------------------------------------------------------

    async def sync_group(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                         protocol_type: str | None, protocol_name: str | None,
                         assignments: dict[str, bytes]) -> SyncResult:
        error = self._group_status_error(group_id)
        if error is not None:
            return SyncResult(error)
        group = self.groups.get(group_id)
        if group is None:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        error = self._generation_member_error(group, generation_id, member_id, group_instance_id)
        if error is None and ((protocol_type is not None and protocol_type != group.protocol_type)
                              or (protocol_name is not None and protocol_name != group.protocol_name)):
            error = ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        if error is not None:
            return SyncResult(error)
        if group.state is GroupState.EMPTY:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.state is GroupState.PREPARING_REBALANCE:
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        member = group.members[member_id]
        self._synced(group, member_id)
        if group.state is GroupState.STABLE:
            self._schedule_heartbeat_expiry(group, member, member.session_timeout_ms)
            return SyncResult(ErrorCode.NONE, member.assignment, group.protocol_type, group.protocol_name)
        reply: Reply[SyncResult] = Reply()
        group.set_awaiting_sync(member, reply)
        if group.is_leader(member_id):
            logger.info("group %s: assignment received from leader %s for generation %d",
                        group.group_id, member_id, group.generation_id)
            # Members the leader left out get an empty assignment; unknown member ids are ignored.
            for each in group.members.values():
                each.assignment = assignments.get(each.member_id, b"")
            self._propagate_assignment(group, ErrorCode.NONE)
            group.transition_to(GroupState.STABLE)
        return await reply.wait()

    def _synced(self, group: Group, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self._cancel_sync_expiry(group)

    @staticmethod
    def _cancel_sync_expiry(group: Group) -> None:
        group.pending_sync.clear()
        if group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None

    def _sync_expired(self, group: Group, generation_id: int) -> None:
        """Members that never sent SyncGroup within the rebalance timeout leave, and the group rebalances."""
        group.sync_timer = None
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
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            result = SyncResult(error, member.assignment) if error != ErrorCode.NONE else \
                SyncResult(error, member.assignment, group.protocol_type, group.protocol_name)
            if group.invoke_sync(member, result):
                # Its session restarts now: it may have expired, ignored, while the member waited.
                self._schedule_heartbeat_expiry(group, member, member.session_timeout_ms)

    # -- Heartbeat and session expiry ------------------------------------------------------------

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> ErrorCode:
        error = self._group_status_error(group_id)
        if error is not None:
            return error
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        error = self._generation_member_error(group, generation_id, member_id, group_instance_id)
        if error is not None:
            return error
        if group.state is GroupState.EMPTY:
            return ErrorCode.UNKNOWN_MEMBER_ID
        member = group.members[member_id]
        self._schedule_heartbeat_expiry(group, member, member.session_timeout_ms)
        # The heartbeat response is how members learn that they must rejoin.
        if group.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def _schedule_heartbeat_expiry(self, group: Group, member: Member, timeout_ms: int) -> None:
        member.cancel_heartbeat_timer()
        member.heartbeat_timer = self._timers.call_after(
            timeout_ms / 1000, functools.partial(self._heartbeat_expired, group, member))

    def _heartbeat_expired(self, group: Group, member: Member) -> None:
        member.heartbeat_timer = None
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
        group.invoke_join(member, JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group, f"member {member.member_id} left")
        elif group.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(group)

    # -- LeaveGroup ------------------------------------------------------------------------------

    def leave_group(self, group_id: str, leaving: list[tuple[str, str | None]]) -> tuple[ErrorCode, list[ErrorCode]]:
        """Remove members given as (member id, group instance id); a static member may be named by
        its instance id alone (administrative removal). Returns the group error and one per member."""
        error = self._group_status_error(group_id)
        if error is not None:
            return error, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID] * len(leaving)
        if group.state is GroupState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        return ErrorCode.NONE, [self._leave(group, member_id, instance_id) for member_id, instance_id in leaving]

    def _leave(self, group: Group, member_id: str, group_instance_id: str | None) -> ErrorCode:
        if member_id == UNKNOWN_MEMBER_ID:
            current = group.static_members.get(group_instance_id) if group_instance_id is not None else None
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            member_id = current
        elif member_id in group.pending_members:
            group.remove_pending_member(member_id)
            self._pending_member_removed(group)
            return ErrorCode.NONE
        else:
            error = self._member_error(group, member_id, group_instance_id)
            if error is not None:
                return error
        logger.info("group %s: member %s left", group.group_id, member_id)
        self._remove_member_and_update_group(group, group.members[member_id])
        return ErrorCode.NONE

    # -- offsets ---------------------------------------------------------------------------------

    async def commit_offsets(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                             offsets: dict[TopicPartition, OffsetAndMetadata]) -> dict[TopicPartition, ErrorCode]:
        """Store committed offsets (of partitions known to exist); the error for each."""
        error = self._group_status_error(group_id, empty_allowed=True)
        group = self.groups.get(group_id)
        if error is None and group is None:
            if generation_id >= 0:
                # A generation of a group that does not exist (any more).
                error = ErrorCode.ILLEGAL_GENERATION
            else:
                # A consumer without group management (assign()) or an admin client.
                group = self.groups[group_id] = Group(group_id)
        if error is None:
            error = self._offset_commit_error(group, generation_id, member_id, group_instance_id)
        if error is None and group.state is GroupState.COMPLETING_REBALANCE:
            # The member has its new generation but not its assignment yet: it should not commit.
            error = ErrorCode.REBALANCE_IN_PROGRESS
        if error is not None:
            return dict.fromkeys(offsets, error)
        if group.state in (GroupState.STABLE, GroupState.PREPARING_REBALANCE):
            # A commit counts as a sign of life. During PreparingRebalance commits are still
            # taken: the member learns of the rebalance from its next heartbeat.
            member = group.members[member_id]
            self._schedule_heartbeat_expiry(group, member, member.session_timeout_ms)
        results = {}
        accepted = {}
        for partition, value in offsets.items():
            if len(value.metadata.encode()) > OFFSET_METADATA_MAX_BYTES:
                results[partition] = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                accepted[partition] = value
        if accepted:
            outcome = ErrorCode.NONE
            try:
                await self.offsets.commit(group_id, accepted)
            except RecordBatchTooLargeError:
                outcome = ErrorCode.INVALID_COMMIT_OFFSET_SIZE
            except LogStorageError as exc:
                # Kafka's GroupMetadataManager answers a KAFKA_STORAGE_ERROR of the offsets
                # log's append with NOT_COORDINATOR: the client finds the coordinator and retries.
                self._commit_failures.failed(f"group {group_id}: {exc}")
                outcome = ErrorCode.NOT_COORDINATOR
            except LogError:
                logger.exception("group %s: cannot write committed offsets", group_id)
                outcome = ErrorCode.COORDINATOR_NOT_AVAILABLE
            else:
                self._commit_failures.succeeded()
            results.update(dict.fromkeys(accepted, outcome))
        return results

    def _offset_commit_error(self, group: Group, generation_id: int, member_id: str,
                             group_instance_id: str | None) -> ErrorCode | None:
        if group.state is GroupState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.state is GroupState.EMPTY:
            return None
        if generation_id >= 0 or member_id != UNKNOWN_MEMBER_ID or group_instance_id is not None:
            return self._generation_member_error(group, generation_id, member_id, group_instance_id)
        # Without a generation, only a group that has no members takes commits.
        return ErrorCode.UNKNOWN_MEMBER_ID if group.state is not GroupState.EMPTY else None

    def fetch_offsets(self, group_id: str, partitions: list[TopicPartition] | None
                      ) -> tuple[ErrorCode, dict[TopicPartition, OffsetAndMetadata | None]]:
        """The committed offsets of `partitions` (None: every committed one), whatever the group's
        state: groups may commit without using group management."""
        error = self._group_status_error(group_id, empty_allowed=True)
        if error is not None:
            return error, {}
        committed = self.offsets.group_offsets(group_id)
        if partitions is None:
            return ErrorCode.NONE, dict(committed)
        return ErrorCode.NONE, {partition: committed.get(partition) for partition in partitions}

    # -- administration --------------------------------------------------------------------------

    def describe_group(self, group_id: str) -> tuple[ErrorCode, GroupSummary]:
        error = self._group_status_error(group_id, empty_allowed=True)
        if error is not None:
            return error, GroupSummary(group_id, "", "", "")
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, GroupSummary(group_id, GroupState.DEAD.value, "", "")
        stable = group.state is GroupState.STABLE
        members = tuple(
            MemberSummary(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                          m.metadata(group.protocol_name) if stable else b"", m.assignment if stable else b"")
            for m in group.members.values())
        return ErrorCode.NONE, GroupSummary(group_id, group.state.value, group.protocol_type or "",
                                            group.protocol_name if stable else "", members)

    def list_groups(self, states: list[str], group_types: list[str]) -> tuple[ErrorCode, list[GroupOverview]]:
        """Groups in any of `states` and of any of `group_types` (empty: no filter), case-insensitively."""
        if not self._active:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        wanted_states = {state.lower() for state in states}
        if group_types and CLASSIC_GROUP_TYPE not in {group_type.lower() for group_type in group_types}:
            return ErrorCode.NONE, []
        return ErrorCode.NONE, [
            GroupOverview(group.group_id, group.protocol_type or "", group.state.value)
            for group in self.groups.values()
            if not wanted_states or group.state.value.lower() in wanted_states]

    async def delete_groups(self, group_ids: list[str]) -> dict[str, ErrorCode]:
        """Delete empty groups and their committed offsets (leaving tombstones in the offsets log)."""
        results: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            error = self._group_status_error(group_id, empty_allowed=True)
            group = self.groups.get(group_id)
            if error is not None:
                results[group_id] = error
            elif group is None or group.state is GroupState.DEAD:
                results[group_id] = ErrorCode.GROUP_ID_NOT_FOUND
            elif group.state is not GroupState.EMPTY:
                results[group_id] = ErrorCode.NON_EMPTY_GROUP
            else:
                # Dead at once, so that a member joining meanwhile starts a new group.
                group.transition_to(GroupState.DEAD)
                del self.groups[group_id]
                results[group_id] = await self._delete_offsets(group_id)
        return results

    async def _delete_offsets(self, group_id: str) -> ErrorCode:
        try:
            removed = await self.offsets.delete_group(group_id)
        except LogError:
            logger.exception("group %s: cannot write the tombstones of its offsets", group_id)
            # Its offsets are still committed: the group stays, empty.
            self.groups.setdefault(group_id, Group(group_id))
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        logger.info("deleted group %s and its %d committed offset(s)", group_id, removed)
        return ErrorCode.NONE

    def _schedule_empty_group_cleanup(self) -> None:
        self._timers.call_after(EMPTY_GROUP_CLEANUP_INTERVAL_MS / 1000, self._clean_up_empty_groups)

    def _clean_up_empty_groups(self) -> None:
        """Forget groups that are empty and have no committed offsets, as Kafka does periodically."""
        committed = set(self.offsets.group_ids())
        for group_id, group in list(self.groups.items()):
            if group.state is GroupState.EMPTY and group_id not in committed:
                group.transition_to(GroupState.DEAD)
                del self.groups[group_id]
        self._schedule_empty_group_cleanup()

