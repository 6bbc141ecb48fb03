"""Consumer groups: the group coordinator (classic protocol) and the durable committed-offset store."""

from broker.groups.coordinator import (
    UNKNOWN_MEMBER_ID,
    GroupCoordinator,
    GroupOverview,
    GroupSummary,
    JoinRequest,
    MemberIdRequired,
    MemberSummary,
)
from broker.groups.group import GroupState, JoinedMember, JoinResult, SyncResult
from broker.groups.offsets import OFFSETS_LOG_DIRECTORY, OffsetAndMetadata, OffsetStore, TopicPartition

__all__ = [
    "GroupCoordinator",
    "GroupOverview",
    "GroupState",
    "GroupSummary",
    "JoinRequest",
    "JoinResult",
    "JoinedMember",
    "MemberIdRequired",
    "MemberSummary",
    "OFFSETS_LOG_DIRECTORY",
    "OffsetAndMetadata",
    "OffsetStore",
    "SyncResult",
    "TopicPartition",
    "UNKNOWN_MEMBER_ID",
]
