"""One classic consumer group and its members, as Kafka's GroupMetadata and MemberMetadata keep them."""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter

import trio
from outcome import Error, Outcome

from broker.groups.timers import Deadline
from protocol.errors import ApiError, ErrorCode, ProtocolError
from protocol.messages.group_data import CONSUMER_PROTOCOL_SUBSCRIPTION
from protocol.primitives import open_frame

# The protocol type of Kafka's consumers, whose protocol metadata is a ConsumerProtocolSubscription.
CONSUMER_PROTOCOL_TYPE = "consumer"
_PROTOCOL_VERSION_BYTES = 2

# Where a parked JoinGroup or SyncGroup waits for its answer: the result, or the ApiError it fails with.
Answer = trio.MemorySendChannel


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS_STATES = {
    GroupState.EMPTY: {GroupState.PREPARING_REBALANCE},
    GroupState.PREPARING_REBALANCE: {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY},
    GroupState.COMPLETING_REBALANCE: {GroupState.PREPARING_REBALANCE},
    GroupState.STABLE: {GroupState.COMPLETING_REBALANCE},
    GroupState.DEAD: set(GroupState),
}


@dataclasses.dataclass(frozen=True)
class JoinedMember:
    """A member as the leader sees it in the JoinGroup response: its metadata for the chosen protocol."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclasses.dataclass(frozen=True)
class JoinResult:
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    skip_assignment: bool = False
    members: tuple[JoinedMember, ...] = ()


@dataclasses.dataclass(frozen=True)
class SyncResult:
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclasses.dataclass
class MemberIdentity:
    """Who a member is, as DescribeGroups shows it."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str


@dataclasses.dataclass(eq=False)
class Member(MemberIdentity):
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    # (name, metadata) in the member's order of preference.
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    # A member that joined in the current rebalance and has not been given a generation yet.
    is_new: bool = False
    awaiting_join: Answer[Outcome[JoinResult]] | None = None
    awaiting_sync: Answer[Outcome[SyncResult]] | None = None
    # Removes the member unless a heartbeat (or a commit, or the end of a rebalance) moves it on.
    session: Deadline | None = None

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata(self, protocol: str) -> bytes:
        return next(metadata for name, metadata in self.protocols if name == protocol)

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        return next(name for name in self.protocol_names if name in candidates)

    def cancel_session(self) -> None:
        if self.session is not None:
            self.session.cancel()


class Group:
    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.state = GroupState.EMPTY
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.generation_id = 0
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        # group.instance.id -> the member id it currently has.
        self.static_members: dict[str, str] = {}
        # Member ids handed out with MEMBER_ID_REQUIRED, each expiring after the session timeout.
        self.pending_members: dict[str, Deadline] = {}
        # Members of the new generation that have not sent SyncGroup yet.
        self.pending_sync: set[str] = set()
        self.num_awaiting_join = 0
        self.supported_protocols: Counter[str] = Counter()
        # Set when a member joins during the initial rebalance delay, which then extends it.
        self.new_member_added = False
        # The end of the join phase (the initial delay, or the rebalance timeout), and of the sync phase.
        self.join_deadline: Deadline | None = None
        self.join_is_initial = False
        self.sync_deadline: Deadline | None = None
        # The topics a "consumer" group's members subscribe to, from the generation's protocol
        # metadata; None while unknown (no generation yet, another protocol type, unreadable metadata).
        self.subscribed_topics: set[str] | None = None

    def __repr__(self) -> str:
        return f"Group({self.group_id!r}, {self.state.value}, generation {self.generation_id})"

    def transition_to(self, state: GroupState) -> None:
        assert self.state in _VALID_PREVIOUS_STATES[state], f"{self!r} cannot move to {state.value}"
        self.state = state

    @property
    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS_STATES[GroupState.PREPARING_REBALANCE]

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    @property
    def rebalance_timeout_ms(self) -> int:
        return max((member.rebalance_timeout_ms for member in self.members.values()), default=0)

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.num_awaiting_join and not self.pending_members

    # -- membership ------------------------------------------------------------------------------

    def add(self, member: Member, reply: Answer[Outcome[JoinResult]]) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.supported_protocols.update(member.protocol_names)
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        member.awaiting_join = reply
        self.num_awaiting_join += 1
        self.remove_pending_member(member.member_id)

    def remove(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self.supported_protocols.subtract(member.protocol_names)
            if member.awaiting_join is not None:
                self.num_awaiting_join -= 1
            # A parked SyncGroup of a removed member is answered rather than left hanging.
            self.invoke_sync(member, Error(ApiError(ErrorCode.UNKNOWN_MEMBER_ID)))
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
            member.cancel_session()
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.remove_pending_member(member_id)
        self.pending_sync.discard(member_id)

    def remove_pending_member(self, member_id: str) -> None:
        timer = self.pending_members.pop(member_id, None)
        if timer is not None:
            timer.cancel()

    def update_member(self, member: Member, protocols: list[tuple[str, bytes]], rebalance_timeout_ms: int,
                      session_timeout_ms: int, reply: Answer[Outcome[JoinResult]]) -> None:
        self.supported_protocols.subtract(member.protocol_names)
        member.protocols = protocols
        self.supported_protocols.update(member.protocol_names)
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        if member.awaiting_join is None:
            self.num_awaiting_join += 1
        else:
            # The member re-sent JoinGroup (from another connection) while the older one waits:
            # the new request takes its place.
            _supersede(member.awaiting_join)
        member.awaiting_join = reply

    def replace_static_member(self, group_instance_id: str, old_member_id: str, new_member_id: str) -> Member:
        """Give the static member a new member id; whoever still uses the old one is fenced."""
        member = self.members.pop(old_member_id)
        self.invoke_join(member, Error(ApiError(ErrorCode.FENCED_INSTANCE_ID)))
        self.invoke_sync(member, Error(ApiError(ErrorCode.FENCED_INSTANCE_ID)))
        member.member_id = new_member_id
        self.members[new_member_id] = member
        if self.is_leader(old_member_id):
            self.leader_id = new_member_id
        if old_member_id in self.pending_sync:
            self.pending_sync.discard(old_member_id)
            self.pending_sync.add(new_member_id)
        self.static_members[group_instance_id] = new_member_id
        return member

    def invoke_join(self, member: Member, result: Outcome[JoinResult]) -> bool:
        """Answer the member's parked JoinGroup, if it has one."""
        answered = _answer(member.awaiting_join, result)
        if answered:
            member.awaiting_join = None
            self.num_awaiting_join -= 1
        return answered

    def invoke_sync(self, member: Member, result: Outcome[SyncResult]) -> bool:
        """Answer the member's parked SyncGroup, if it has one."""
        answered = _answer(member.awaiting_sync, result)
        member.awaiting_sync = None
        return answered

    def set_awaiting_sync(self, member: Member, reply: Answer[Outcome[SyncResult]]) -> None:
        # As for JoinGroup: a SyncGroup sent again replaces the one that waits.
        if member.awaiting_sync is not None:
            _supersede(member.awaiting_sync)
        member.awaiting_sync = reply

    def maybe_elect_new_joined_leader(self) -> bool:
        """Make sure the leader is a member that rejoined; False when no member did."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join is not None:
            return True
        for member in self.members.values():
            if member.awaiting_join is not None:
                self.leader_id = member.member_id
                return True
        return False

    # -- protocols -------------------------------------------------------------------------------

    def supports_protocols(self, protocol_type: str, protocol_names: list[str]) -> bool:
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(protocol_names)
        return self.protocol_type == protocol_type and any(
            self.supported_protocols[name] == len(self.members) for name in protocol_names)

    def select_protocol(self) -> str:
        """The protocol every member supports that most members prefer (ties: the leader's order)."""
        candidates = {name for name, count in self.supported_protocols.items() if count == len(self.members)}
        votes = Counter(member.vote(candidates) for member in self.members.values())
        preference = self.members[self.leader_id].protocol_names
        return max(votes, key=lambda name: (votes[name], -preference.index(name)))

    def init_next_generation(self) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition_to(GroupState.COMPLETING_REBALANCE)
        else:
            self.protocol_name = None
            self.transition_to(GroupState.EMPTY)
        self.subscribed_topics = self._compute_subscribed_topics()
        self.pending_sync.clear()

    @property
    def is_consumer_group(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    def is_subscribed_to(self, topic: str) -> bool:
        """Whether the members consume `topic`; when that is not known, they might."""
        return self.subscribed_topics is None or topic in self.subscribed_topics

    def _compute_subscribed_topics(self) -> set[str] | None:
        if not self.is_consumer_group or not self.members or self.protocol_name is None:
            return None
        try:
            return {topic for member in self.members.values()
                    for topic in _subscription(member.metadata(self.protocol_name))}
        except ProtocolError:
            return None

    def current_member_metadata(self) -> tuple[JoinedMember, ...]:
        return tuple(JoinedMember(member.member_id, member.group_instance_id, member.metadata(self.protocol_name))
                     for member in self.members.values())


def _answer(reply: Answer | None, result: Outcome) -> bool:
    # The buffer holds the one answer even if the request gave up waiting (its client went away).
    if reply is None:
        return False
    reply.send_nowait(result)
    return True


def _supersede(reply: Answer) -> None:
    # Kafka answers the request a newer one replaced NOT_COORDINATOR (KAFKA-20938; before, it
    # dropped it, and the client waited for it until its request timeout).
    _answer(reply, Error(ApiError(ErrorCode.NOT_COORDINATOR, "the member sent this request again")))


async def wait_for_answer(answer: trio.MemoryReceiveChannel):
    """The parked request's result; raises the ApiError it failed with."""
    return (await answer.receive()).unwrap()


def _subscription(metadata: bytes) -> list[str]:
    """The topics of a consumer's protocol metadata (an int16 version, then the subscription):
    every version starts with version 0's fields, so they are read as version 0, as Kafka does."""
    return CONSUMER_PROTOCOL_SUBSCRIPTION.read(0, open_frame(metadata, _PROTOCOL_VERSION_BYTES)).topics
