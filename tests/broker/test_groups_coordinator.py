"""The group coordinator's state machine, driven directly (no sockets), on trio's mock clock
(every test takes `autojump_clock`: pytest-trio only installs a clock a test asks for itself)."""

from __future__ import annotations

import errno
import inspect

import pytest
import trio
from outcome import Error, acapture

from broker.groups import (
    GroupCoordinator,
    GroupState,
    JoinRequest,
    OffsetAndMetadata,
    OffsetStore,
)
from log import LogStorageError
from protocol.errors import ApiError, ErrorCode

GROUP = "group"
SESSION_MS = 10_000
REBALANCE_MS = 30_000
RANGE = [("range", b"range-metadata")]
# On the mock clock; lets the members a test starts together join the same first generation.
INITIAL_DELAY_MS = 100


def request(member_id: str = "", *, group: str = GROUP, instance: str | None = None,
            session: int = SESSION_MS, rebalance: int = REBALANCE_MS, protocols=None,
            protocol_type: str = "consumer", known_member_id: bool = True,
            skip_assignment: bool = False) -> JoinRequest:
    return JoinRequest(group, member_id, instance, "client", "", session, rebalance, protocol_type,
                       RANGE if protocols is None else protocols, known_member_id, skip_assignment)


@pytest.fixture
async def coordinator(tmp_path, nursery):
    coordinator = GroupCoordinator(OffsetStore(tmp_path), initial_rebalance_delay_ms=INITIAL_DELAY_MS)
    nursery.start_soon(coordinator.run)
    yield coordinator
    coordinator.close()


async def refusal(call, *args) -> ErrorCode:
    """The error code `call(*args)` (a coroutine function or not) is refused with."""
    with pytest.raises(ApiError) as refused:
        result = call(*args)
        if inspect.isawaitable(result):
            await result
    return refused.value.code


def codes(outcomes):
    """The error code of each outcome (NONE for a success), keyed or listed as given."""
    def code(outcome):
        return outcome.error.code if isinstance(outcome, Error) else ErrorCode.NONE
    if isinstance(outcomes, dict):
        return {key: code(outcome) for key, outcome in outcomes.items()}
    return [code(outcome) for outcome in outcomes]


def fetched(coordinator, group_id, partitions, **options):
    """fetch_offsets' answer unwrapped: each partition's committed offset, None or error code."""
    return {partition: outcome.error.code if isinstance(outcome, Error) else outcome.unwrap()
            for partition, outcome in coordinator.fetch_offsets(group_id, partitions, **options).items()}


async def new_member_id(coordinator, **options) -> str:
    with pytest.raises(ApiError) as required:
        await coordinator.join_group(request(**options))
    assert required.value.code == ErrorCode.MEMBER_ID_REQUIRED
    return required.value.member_id


class Background:
    """A coordinator call running in the background, parked in the coordinator once `start` returns."""

    def __init__(self) -> None:
        self.value = None
        self.done = trio.Event()

    @classmethod
    async def start(cls, nursery, call, *args) -> Background:
        background = cls()
        await nursery.start(background._run, call, args)
        return background

    async def _run(self, call, args, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        # The coordinator handles a request without yielding until the request parks.
        self.value = await acapture(call, *args)
        self.done.set()

    async def result(self):
        """The call's result; raises what it raised."""
        await self.done.wait()
        return self.value.unwrap()


async def start_join(coordinator, nursery, member_id: str, **options) -> Background:
    return await Background.start(nursery, coordinator.join_group, request(member_id, **options))


async def stable_group(coordinator, nursery, count: int, **options) -> list[str]:
    """`count` dynamic members that joined together and synced generation 1 (leader first)."""
    ids = [await new_member_id(coordinator, **options) for _ in range(count)]
    joiners = [await start_join(coordinator, nursery, member_id, **options) for member_id in ids]
    results = [await joiner.result() for joiner in joiners]
    leader = results[0].leader_id
    assignments = {member_id: member_id.encode() for member_id in ids}
    await sync_all(coordinator, nursery, results[0].generation_id, ids, leader, assignments)
    return [leader] + [member_id for member_id in ids if member_id != leader]


async def sync_all(coordinator, nursery, generation: int, ids: list[str], leader: str,
                   assignments: dict[str, bytes]) -> dict[str, object]:
    """Followers' SyncGroups park until the leader's brings the assignments."""
    followers = {member_id: await Background.start(nursery, coordinator.sync_group, GROUP, generation, member_id,
                                                   None, None, None, {})
                 for member_id in ids if member_id != leader}
    assert not any(follower.done.is_set() for follower in followers.values())
    results = {leader: await coordinator.sync_group(GROUP, generation, leader, None, None, None, assignments)}
    for member_id, follower in followers.items():
        results[member_id] = await follower.result()
    return results


async def test_first_member_leads_and_gets_its_assignment(coordinator, nursery, autojump_clock):
    member_id = await new_member_id(coordinator)
    joined = await coordinator.join_group(request(member_id))
    assert (joined.generation_id, joined.leader_id, joined.member_id) == (1, member_id, member_id)
    assert joined.protocol_type == "consumer" and joined.protocol_name == "range"
    assert [(m.member_id, m.metadata) for m in joined.members] == [(member_id, b"range-metadata")]
    assert coordinator.groups[GROUP].state is GroupState.COMPLETING_REBALANCE
    synced = await coordinator.sync_group(GROUP, 1, member_id, None, "consumer", "range", {member_id: b"mine"})
    assert (synced.assignment, synced.protocol_name) == (b"mine", "range")
    assert coordinator.groups[GROUP].state is GroupState.STABLE
    coordinator.heartbeat(GROUP, 1, member_id, None)


async def test_before_v4_a_new_member_joins_in_one_step(coordinator, autojump_clock):
    joined = await coordinator.join_group(request(known_member_id=False))
    assert joined.member_id.startswith("client-")
    assert joined.leader_id == joined.member_id


async def test_members_joining_one_after_another_all_get_an_assignment(coordinator, nursery, autojump_clock):
    (first,) = await stable_group(coordinator, nursery, 1)
    second = await new_member_id(coordinator)
    joining = await start_join(coordinator, nursery, second)
    assert coordinator.groups[GROUP].state is GroupState.PREPARING_REBALANCE
    # The first member learns of the rebalance from its heartbeat and rejoins.
    assert await refusal(coordinator.heartbeat, GROUP, 1, first, None) == ErrorCode.REBALANCE_IN_PROGRESS
    rejoined = await coordinator.join_group(request(first))
    joined = await joining.result()
    assert rejoined.generation_id == joined.generation_id == 2
    assert rejoined.leader_id == joined.leader_id == first
    assert {m.member_id for m in rejoined.members} == {first, second}
    assert joined.members == ()
    # The leader assigns only to itself: the other member gets empty bytes, not an error.
    results = await sync_all(coordinator, nursery, 2, [first, second], first, {first: b"partition-0"})
    assert (results[first].assignment, results[second].assignment) == (b"partition-0", b"")


async def test_no_common_protocol_is_inconsistent(coordinator, nursery, autojump_clock):
    await stable_group(coordinator, nursery, 1)
    assert await refusal(coordinator.join_group, request(protocols=[("roundrobin", b"")], known_member_id=False)) \
        == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert await refusal(coordinator.join_group, request(protocol_type="connect", known_member_id=False)) \
        == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


async def test_an_empty_group_needs_a_protocol(coordinator, autojump_clock):
    assert await refusal(coordinator.join_group, request(protocols=[], known_member_id=False)) \
        == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


async def test_the_protocol_most_members_prefer_among_common_ones_wins(coordinator, nursery, autojump_clock):
    preferences = [
        [("range", b"a"), ("roundrobin", b"a"), ("sticky", b"a")],
        [("roundrobin", b"b"), ("range", b"b")],
        [("sticky", b"c"), ("roundrobin", b"c"), ("range", b"c")],
    ]
    ids = [await new_member_id(coordinator, protocols=p) for p in preferences]
    joiners = [await start_join(coordinator, nursery, member_id, protocols=p) for member_id, p in zip(ids, preferences)]
    results = [await joiner.result() for joiner in joiners]
    assert {r.protocol_name for r in results} == {"roundrobin"}
    leader = next(r for r in results if r.members)
    assert {m.member_id: m.metadata for m in leader.members} == dict(zip(ids, [b"a", b"b", b"c"]))


async def test_a_silent_member_expires_after_its_session_timeout(coordinator, nursery, autojump_clock):
    first, second = await stable_group(coordinator, nursery, 2)
    start = trio.current_time()
    with pytest.raises(ApiError) as refused:
        while True:
            await trio.sleep(1)
            coordinator.heartbeat(GROUP, 1, first, None)
    assert refused.value.code == ErrorCode.REBALANCE_IN_PROGRESS
    assert trio.current_time() - start >= SESSION_MS / 1000
    assert second not in coordinator.groups[GROUP].members
    rejoined = await coordinator.join_group(request(first))
    assert (rejoined.generation_id, [m.member_id for m in rejoined.members]) == (2, [first])
    assert await refusal(coordinator.heartbeat, GROUP, 1, second, None) == ErrorCode.UNKNOWN_MEMBER_ID


async def test_members_that_do_not_rejoin_within_the_rebalance_timeout_are_dropped(coordinator, nursery,
                                                                                  autojump_clock):
    first, second = await stable_group(coordinator, nursery, 2, session=60_000, rebalance=5_000)
    rejoined = await coordinator.join_group(request(first, session=60_000, rebalance=5_000))
    assert rejoined.generation_id == 2
    assert [m.member_id for m in rejoined.members] == [first]
    assert await refusal(coordinator.heartbeat, GROUP, 2, second, None) == ErrorCode.UNKNOWN_MEMBER_ID


async def test_a_member_that_never_syncs_is_dropped_after_the_rebalance_timeout(coordinator, nursery, autojump_clock):
    ids = [await new_member_id(coordinator, rebalance=5_000) for _ in range(2)]
    joiners = [await start_join(coordinator, nursery, member_id, rebalance=5_000) for member_id in ids]
    results = [await joiner.result() for joiner in joiners]
    leader = results[0].leader_id
    follower = next(member_id for member_id in ids if member_id != leader)
    synced = await coordinator.sync_group(GROUP, 1, leader, None, None, None, {leader: b"x", follower: b"y"})
    assert synced.assignment == b"x"
    with pytest.raises(ApiError):
        while True:
            coordinator.heartbeat(GROUP, 1, leader, None)
            await trio.sleep(1)
    assert follower not in coordinator.groups[GROUP].members


async def test_generation_and_member_checks(coordinator, nursery, autojump_clock):
    (member,) = await stable_group(coordinator, nursery, 1)
    assert await refusal(coordinator.heartbeat, GROUP, 7, member, None) == ErrorCode.ILLEGAL_GENERATION
    assert await refusal(coordinator.heartbeat, GROUP, 1, "stranger", None) == ErrorCode.UNKNOWN_MEMBER_ID
    assert await refusal(coordinator.heartbeat, "no-such-group", 1, member, None) == ErrorCode.UNKNOWN_MEMBER_ID
    sync = coordinator.sync_group
    assert await refusal(sync, GROUP, 7, member, None, None, None, {}) == ErrorCode.ILLEGAL_GENERATION
    assert await refusal(sync, GROUP, 1, member, None, "connect", None, {}) == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert await refusal(sync, "no-such-group", 1, member, None, None, None, {}) == ErrorCode.UNKNOWN_MEMBER_ID
    assert await refusal(coordinator.join_group, request("stale-id", group="fresh")) == ErrorCode.UNKNOWN_MEMBER_ID
    assert await refusal(coordinator.join_group, request("stranger")) == ErrorCode.UNKNOWN_MEMBER_ID
    commit = {("t", 0): OffsetAndMetadata(5, -1, "", 0)}
    assert await refusal(coordinator.commit_offsets, GROUP, 7, member, None, commit) == ErrorCode.ILLEGAL_GENERATION
    assert await refusal(coordinator.commit_offsets, "fresh", 3, "x", None, commit) == ErrorCode.ILLEGAL_GENERATION


async def test_requests_that_kafka_refuses_before_looking_at_the_group(coordinator, autojump_clock):
    assert await refusal(coordinator.join_group, request(group="")) == ErrorCode.INVALID_GROUP_ID
    assert await refusal(coordinator.join_group, request(session=1000)) == ErrorCode.INVALID_SESSION_TIMEOUT
    assert await refusal(coordinator.heartbeat, "", 1, "m", None) == ErrorCode.INVALID_GROUP_ID
    assert await refusal(coordinator.leave_group, "", [("m", None)]) == ErrorCode.INVALID_GROUP_ID
    assert GROUP not in coordinator.groups


async def test_a_restarted_static_member_gets_its_assignment_back_without_a_rebalance(coordinator, nursery,
                                                                                     autojump_clock):
    ids = [(await coordinator.join_group(request(instance=name))) for name in ("a",)]
    leader = ids[0].member_id
    other = await new_member_id(coordinator)
    joining = await start_join(coordinator, nursery, other)
    rejoined = await coordinator.join_group(request(leader, instance="a"))
    await joining.result()
    assert rejoined.generation_id == 2
    await sync_all(coordinator, nursery, 2, [leader, other], leader, {leader: b"p0", other: b"p1"})
    # The static member restarts: no member id, same instance id.
    restarted = await coordinator.join_group(request(instance="a"))
    group = coordinator.groups[GROUP]
    assert restarted.generation_id == 2 and group.state is GroupState.STABLE
    assert restarted.member_id != leader and restarted.member_id.startswith("a-")
    # Before JoinGroup v9 the old leader id comes back, so the new instance does not assign.
    assert restarted.leader_id == leader and restarted.members == ()
    synced = await coordinator.sync_group(GROUP, 2, restarted.member_id, "a", None, None, {})
    assert synced.assignment == b"p0"
    coordinator.heartbeat(GROUP, 2, other, None)
    # The previous incarnation is fenced.
    assert await refusal(coordinator.heartbeat, GROUP, 2, leader, "a") == ErrorCode.FENCED_INSTANCE_ID
    assert await refusal(coordinator.join_group, request(leader, instance="a")) == ErrorCode.FENCED_INSTANCE_ID


async def test_from_v9_a_restarted_static_leader_is_told_to_skip_assignment(coordinator, nursery, autojump_clock):
    first = await coordinator.join_group(request(instance="a", skip_assignment=True))
    await coordinator.sync_group(GROUP, 1, first.member_id, "a", None, None, {first.member_id: b"p0"})
    restarted = await coordinator.join_group(request(instance="a", skip_assignment=True))
    assert restarted.skip_assignment
    assert restarted.leader_id == restarted.member_id
    assert [m.member_id for m in restarted.members] == [restarted.member_id]
    assert restarted.generation_id == 1


async def test_a_static_member_missing_a_rebalance_keeps_its_place(coordinator, nursery, autojump_clock):
    static = await coordinator.join_group(request(instance="s", session=60_000, rebalance=5_000))
    await coordinator.sync_group(GROUP, 1, static.member_id, "s", None, None, {})
    dynamic = await new_member_id(coordinator, session=60_000, rebalance=5_000)
    joined = await coordinator.join_group(request(dynamic, session=60_000, rebalance=5_000))
    # The join phase ends at the rebalance timeout without the static member, which stays.
    assert joined.generation_id == 2
    assert static.member_id in coordinator.groups[GROUP].members
    assert joined.leader_id == dynamic


async def test_leaving_makes_the_others_rebalance(coordinator, nursery, autojump_clock):
    first, second = await stable_group(coordinator, nursery, 2)
    assert codes(coordinator.leave_group(GROUP, [(second, None)])) == [ErrorCode.NONE]
    assert coordinator.groups[GROUP].state is GroupState.PREPARING_REBALANCE
    rejoined = await coordinator.join_group(request(first))
    assert [m.member_id for m in rejoined.members] == [first]
    assert codes(coordinator.leave_group(GROUP, [(second, None)])) == [ErrorCode.UNKNOWN_MEMBER_ID]
    assert codes(coordinator.leave_group("no-such-group", [("x", None)])) == [ErrorCode.UNKNOWN_MEMBER_ID]


async def test_the_last_member_leaving_empties_the_group(coordinator, nursery, autojump_clock):
    (member,) = await stable_group(coordinator, nursery, 1)
    coordinator.leave_group(GROUP, [(member, None)])
    group = coordinator.groups[GROUP]
    assert (group.state, group.generation_id) == (GroupState.EMPTY, 2)


async def test_batched_leave_removes_static_members_by_instance_id(coordinator, nursery, autojump_clock):
    static = await coordinator.join_group(request(instance="s"))
    await coordinator.sync_group(GROUP, 1, static.member_id, "s", None, None, {})
    members = coordinator.leave_group(GROUP, [("", "s"), ("", "unknown"), ("wrong", "s")])
    assert codes(members) == [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.UNKNOWN_MEMBER_ID]
    assert static.member_id not in coordinator.groups[GROUP].members


async def test_a_pending_member_holds_the_rebalance_until_it_expires(coordinator, nursery, autojump_clock):
    (first,) = await stable_group(coordinator, nursery, 1)
    await new_member_id(coordinator)  # never joins with its id
    start = trio.current_time()
    rejoined = await coordinator.join_group(request(first))
    assert trio.current_time() - start >= SESSION_MS / 1000 - 1
    assert [m.member_id for m in rejoined.members] == [first]


async def test_a_pending_member_that_leaves_lets_the_rebalance_complete_at_once(coordinator, nursery, autojump_clock):
    # Kafka's handleLeaveGroup removes a pending member id, and the join phase completes if everyone
    # else has joined: a client that gives its KIP-394 id up says so instead of letting it expire.
    (first,) = await stable_group(coordinator, nursery, 1)
    pending = await new_member_id(coordinator)
    start = trio.current_time()
    rejoin = await start_join(coordinator, nursery, first)
    assert not rejoin.done.is_set()  # the pending member holds it
    assert codes(coordinator.leave_group(GROUP, [(pending, None)])) == [ErrorCode.NONE]
    rejoined = await rejoin.result()
    assert trio.current_time() == start
    assert (rejoined.generation_id, [m.member_id for m in rejoined.members]) == (2, [first])
    assert not coordinator.groups[GROUP].pending_members
    assert codes(coordinator.leave_group(GROUP, [(pending, None)])) == [ErrorCode.UNKNOWN_MEMBER_ID]


async def test_a_joingroup_sent_again_while_one_waits_replaces_it(coordinator, nursery, autojump_clock):
    # As Kafka's coordinator since KAFKA-20938: the older request is answered NOT_COORDINATOR (not
    # REBALANCE_IN_PROGRESS, which would send the client round again), and the member counts once
    # towards everyone having joined.
    first, second = await stable_group(coordinator, nursery, 2)
    older = await start_join(coordinator, nursery, second, protocols=[("range", b"changed")])
    assert coordinator.groups[GROUP].state is GroupState.PREPARING_REBALANCE
    newer = await start_join(coordinator, nursery, second, protocols=[("range", b"changed again")])
    await older.done.wait()
    with pytest.raises(ApiError) as refused:
        await older.result()
    assert refused.value.code == ErrorCode.NOT_COORDINATOR
    assert not newer.done.is_set()
    rejoined = await coordinator.join_group(request(first))
    assert rejoined.generation_id == 2
    assert {m.member_id: m.metadata for m in rejoined.members} == {first: b"range-metadata", second: b"changed again"}
    assert (await newer.result()).generation_id == 2


async def test_a_syncgroup_sent_again_while_one_waits_replaces_it(coordinator, nursery, autojump_clock):
    ids = [await new_member_id(coordinator) for _ in range(2)]
    joiners = [await start_join(coordinator, nursery, member_id) for member_id in ids]
    results = [await joiner.result() for joiner in joiners]
    leader = results[0].leader_id
    follower = next(member_id for member_id in ids if member_id != leader)
    sync = coordinator.sync_group
    older = await Background.start(nursery, sync, GROUP, 1, follower, None, None, None, {})
    newer = await Background.start(nursery, sync, GROUP, 1, follower, None, None, None, {})
    await older.done.wait()
    with pytest.raises(ApiError) as refused:
        await older.result()
    assert refused.value.code == ErrorCode.NOT_COORDINATOR
    await sync(GROUP, 1, leader, None, None, None, {leader: b"l", follower: b"f"})
    assert (await newer.result()).assignment == b"f"


async def test_a_rebalance_during_completing_rebalance_answers_every_parked_syncgroup(coordinator, nursery,
                                                                                     autojump_clock):
    # Kafka's prepareRebalance answers each member waiting in SyncGroup REBALANCE_IN_PROGRESS: every
    # one of them, not only the first (each parked request gets an outcome of its own to unwrap).
    ids = [await new_member_id(coordinator) for _ in range(3)]
    joiners = [await start_join(coordinator, nursery, member_id) for member_id in ids]
    results = [await joiner.result() for joiner in joiners]
    leader = results[0].leader_id
    followers = [member_id for member_id in ids if member_id != leader]
    syncs = [await Background.start(nursery, coordinator.sync_group, GROUP, 1, member_id, None, None, None, {})
             for member_id in followers]
    newcomer = await new_member_id(coordinator)
    await start_join(coordinator, nursery, newcomer)
    assert [await refusal(sync.result) for sync in syncs] == [ErrorCode.REBALANCE_IN_PROGRESS] * 2


async def test_unload_answers_every_parked_request(coordinator, nursery, autojump_clock):
    first, second, third = await stable_group(coordinator, nursery, 3)
    joins = [await start_join(coordinator, nursery, member_id, protocols=[("range", b"new")])
             for member_id in (second, third)]
    coordinator.unload()
    assert [await refusal(join.result) for join in joins] == [ErrorCode.NOT_COORDINATOR] * 2


async def test_initial_rebalance_delay_gathers_members_into_the_first_generation(tmp_path, nursery, autojump_clock):
    coordinator = GroupCoordinator(OffsetStore(tmp_path), initial_rebalance_delay_ms=3000)
    nursery.start_soon(coordinator.run)
    first = await start_join(coordinator, nursery, "", known_member_id=False)
    await trio.sleep(2)  # on the mock clock: the second member comes during the first one's delay
    second = await start_join(coordinator, nursery, "", known_member_id=False)
    results = [await first.result(), await second.result()]
    assert [r.generation_id for r in results] == [1, 1]
    assert len(results[0].members) == 2
    coordinator.close()


async def test_commits_follow_kafkas_rules_for_group_state(coordinator, nursery, autojump_clock):
    offsets = {("t", 0): OffsetAndMetadata(42, 3, "meta", 1000)}
    # Without group management (generation -1) a commit creates an empty group.
    assert codes(await coordinator.commit_offsets("simple", -1, "", None, offsets)) == {("t", 0): ErrorCode.NONE}
    assert coordinator.groups["simple"].state is GroupState.EMPTY
    assert fetched(coordinator, "simple", [("t", 0), ("t", 1)]) == {("t", 0): offsets[("t", 0)], ("t", 1): None}
    assert fetched(coordinator, "simple", None) == offsets
    (member,) = await stable_group(coordinator, nursery, 1)
    # Only members commit to a group that has some.
    assert await refusal(coordinator.commit_offsets, GROUP, -1, "", None, offsets) == ErrorCode.UNKNOWN_MEMBER_ID
    assert codes(await coordinator.commit_offsets(GROUP, 1, member, None, offsets)) == {("t", 0): ErrorCode.NONE}
    too_long = {("t", 1): OffsetAndMetadata(1, -1, "x" * 4097, 0), ("t", 2): OffsetAndMetadata(2, -1, "ok", 0)}
    assert codes(await coordinator.commit_offsets(GROUP, 1, member, None, too_long)) == {
        ("t", 1): ErrorCode.OFFSET_METADATA_TOO_LARGE, ("t", 2): ErrorCode.NONE}


async def test_commits_between_join_and_sync_are_refused(coordinator, nursery, autojump_clock):
    member_id = await new_member_id(coordinator)
    await coordinator.join_group(request(member_id))
    offsets = {("t", 0): OffsetAndMetadata(1, -1, "", 0)}
    assert await refusal(coordinator.commit_offsets, GROUP, 1, member_id, None, offsets) \
        == ErrorCode.REBALANCE_IN_PROGRESS


async def test_describe_list_and_delete(coordinator, nursery, autojump_clock):
    (member,) = await stable_group(coordinator, nursery, 1)
    await coordinator.commit_offsets("idle", -1, "", None, {("t", 0): OffsetAndMetadata(1, -1, "", 0)})
    summary = coordinator.describe_group(GROUP)
    assert (summary.state, summary.protocol_type, summary.protocol_name) == ("Stable", "consumer", "range")
    assert [(m.member_id, m.client_id, m.metadata, m.assignment) for m in summary.members] == [
        (member, "client", b"range-metadata", member.encode())]
    assert coordinator.describe_group("unknown").state == "Dead"
    assert {g.group_id: g.state for g in coordinator.list_groups([], [])} == {GROUP: "Stable", "idle": "Empty"}
    assert [g.group_id for g in coordinator.list_groups(["empty"], [])] == ["idle"]
    assert coordinator.list_groups([], ["consumer"]) == []
    assert len(coordinator.list_groups([], ["Classic"])) == 2
    assert codes(await coordinator.delete_groups([GROUP, "idle", "unknown"])) == {
        GROUP: ErrorCode.NON_EMPTY_GROUP, "idle": ErrorCode.NONE, "unknown": ErrorCode.GROUP_ID_NOT_FOUND}
    assert fetched(coordinator, "idle", None) == {}
    assert "idle" not in coordinator.groups


async def test_groups_with_committed_offsets_come_back_empty_after_a_restart(tmp_path, nursery, autojump_clock):
    coordinator = GroupCoordinator(OffsetStore(tmp_path))
    nursery.start_soon(coordinator.run)
    (member,) = await stable_group(coordinator, nursery, 1)
    offsets = {("t", 0): OffsetAndMetadata(9, 0, "m", 5)}
    await coordinator.commit_offsets(GROUP, 1, member, None, offsets)
    coordinator.unload()
    coordinator.close()
    reopened = GroupCoordinator(OffsetStore(tmp_path))
    assert reopened.groups[GROUP].state is GroupState.EMPTY
    assert fetched(reopened, GROUP, None) == offsets
    reopened.close()


async def test_unload_answers_parked_requests_with_not_coordinator(coordinator, nursery, autojump_clock):
    (first,) = await stable_group(coordinator, nursery, 1)
    second = await new_member_id(coordinator)
    joining = await start_join(coordinator, nursery, second)
    coordinator.unload()
    assert await refusal(joining.result) == ErrorCode.NOT_COORDINATOR
    assert await refusal(coordinator.heartbeat, GROUP, 1, first, None) == ErrorCode.COORDINATOR_NOT_AVAILABLE
    assert await refusal(coordinator.join_group, request()) == ErrorCode.COORDINATOR_NOT_AVAILABLE
    assert await refusal(coordinator.list_groups, [], []) == ErrorCode.COORDINATOR_NOT_AVAILABLE


async def test_empty_groups_without_offsets_are_forgotten_periodically(coordinator, nursery, autojump_clock):
    (member,) = await stable_group(coordinator, nursery, 1)
    coordinator.leave_group(GROUP, [(member, None)])
    assert coordinator.groups[GROUP].state is GroupState.EMPTY
    await trio.sleep(11 * 60)
    assert GROUP not in coordinator.groups


# -- offsets committed in transactions (TxnOffsetCommit, KIP-98/447) --------------------------------

PRODUCER_ID, EPOCH = 4000, 0
OFFSETS = {("t", 0): OffsetAndMetadata(42, 3, "meta", 1000)}


async def commit_in_transaction(coordinator, group_id=GROUP, generation=-1, member="", instance=None,
                                offsets=OFFSETS, producer_id=PRODUCER_ID):
    return codes(await coordinator.commit_transactional_offsets(group_id, generation, member, instance,
                                                                producer_id, EPOCH, offsets))


async def test_transactional_offsets_are_served_only_once_their_transaction_commits(coordinator, autojump_clock):
    # The group does not exist yet: the transaction's commit creates it, empty, as Kafka's does.
    assert await commit_in_transaction(coordinator, "new") == {("t", 0): ErrorCode.NONE}
    assert coordinator.groups["new"].state is GroupState.EMPTY
    assert fetched(coordinator, "new", [("t", 0)]) == {("t", 0): None}
    assert fetched(coordinator, "new", None) == {}
    assert fetched(coordinator, "new", [("t", 0), ("t", 1)], require_stable=True) == {
        ("t", 0): ErrorCode.UNSTABLE_OFFSET_COMMIT, ("t", 1): None}
    assert await coordinator.complete_transaction(PRODUCER_ID, EPOCH, True)
    assert fetched(coordinator, "new", [("t", 0)], require_stable=True) == OFFSETS


async def test_an_aborted_transaction_leaves_the_committed_offsets_as_they_were(coordinator, autojump_clock):
    before = {("t", 0): OffsetAndMetadata(7, 3, "", 1000)}
    await coordinator.commit_offsets("simple", -1, "", None, before)
    await commit_in_transaction(coordinator, "simple")
    # Not stable: only the partition with pending offsets, of those committed, is unstable.
    assert fetched(coordinator, "simple", None, require_stable=True) == {("t", 0): ErrorCode.UNSTABLE_OFFSET_COMMIT}
    assert fetched(coordinator, "simple", None) == before
    assert await coordinator.complete_transaction(PRODUCER_ID, EPOCH, False)
    assert fetched(coordinator, "simple", None, require_stable=True) == before
    assert not await coordinator.complete_transaction(PRODUCER_ID, EPOCH, False)


async def test_transactional_commits_check_the_member_only_when_the_request_names_one(coordinator, nursery,
                                                                                     autojump_clock):
    (member,) = await stable_group(coordinator, nursery, 1)
    # A producer that names no member or generation (before KIP-447) commits to a live group.
    assert await commit_in_transaction(coordinator) == {("t", 0): ErrorCode.NONE}
    assert await refusal(coordinator.commit_offsets, GROUP, -1, "", None, OFFSETS) == ErrorCode.UNKNOWN_MEMBER_ID
    assert await commit_in_transaction(coordinator, generation=1, member=member) == {("t", 0): ErrorCode.NONE}
    for generation, member_id, code in [(1, "stranger", ErrorCode.UNKNOWN_MEMBER_ID),
                                        (-1, "stranger", ErrorCode.UNKNOWN_MEMBER_ID),
                                        (2, member, ErrorCode.ILLEGAL_GENERATION),
                                        (-1, member, ErrorCode.ILLEGAL_GENERATION)]:
        assert await refusal(coordinator.commit_transactional_offsets, GROUP, generation, member_id, None,
                             PRODUCER_ID, EPOCH, OFFSETS) == code
    # A generation names a member: a group that does not exist has none.
    assert await refusal(coordinator.commit_transactional_offsets, "nobody", 1, member, None,
                         PRODUCER_ID, EPOCH, OFFSETS) == ErrorCode.UNKNOWN_MEMBER_ID


async def test_a_transactional_commit_of_a_replaced_static_member_is_fenced(coordinator, nursery, autojump_clock):
    first = await coordinator.join_group(request(instance="a"))
    await coordinator.sync_group(GROUP, 1, first.member_id, "a", None, None, {first.member_id: b"p"})
    restarted = await coordinator.join_group(request(instance="a"))
    assert await refusal(coordinator.commit_transactional_offsets, GROUP, 1, first.member_id, "a",
                         PRODUCER_ID, EPOCH, OFFSETS) == ErrorCode.FENCED_INSTANCE_ID
    assert await commit_in_transaction(coordinator, generation=1, member=restarted.member_id, instance="a") == {
        ("t", 0): ErrorCode.NONE}


async def test_a_transactional_commit_is_taken_between_join_and_sync(coordinator, autojump_clock):
    member_id = await new_member_id(coordinator)
    await coordinator.join_group(request(member_id))
    # Kafka checks only the member and generation of a transactional commit, not the group's phase.
    assert await commit_in_transaction(coordinator, generation=1, member=member_id) == {("t", 0): ErrorCode.NONE}


async def test_transactional_commits_refused_whole_or_by_partition(coordinator, autojump_clock):
    too_long = {("t", 1): OffsetAndMetadata(1, -1, "x" * 4097, 0), ("t", 2): OffsetAndMetadata(2, -1, "ok", 0)}
    assert await commit_in_transaction(coordinator, offsets=too_long) == {
        ("t", 1): ErrorCode.OFFSET_METADATA_TOO_LARGE, ("t", 2): ErrorCode.NONE}
    # Unlike OffsetCommit, TxnOffsetCommit needs a group id.
    assert await refusal(coordinator.commit_transactional_offsets, "", -1, "", None,
                         PRODUCER_ID, EPOCH, OFFSETS) == ErrorCode.INVALID_GROUP_ID
    # The producer's pending offsets have a newer epoch: it was fenced.
    assert codes(await coordinator.commit_transactional_offsets(GROUP, -1, "", None, PRODUCER_ID, EPOCH - 1, OFFSETS)
                 ) == {("t", 0): ErrorCode.INVALID_PRODUCER_EPOCH}
    coordinator.unload()
    assert await refusal(coordinator.commit_transactional_offsets, GROUP, -1, "", None,
                         PRODUCER_ID, EPOCH, OFFSETS) == ErrorCode.COORDINATOR_NOT_AVAILABLE


async def test_a_marker_the_offsets_log_cannot_take_is_a_storage_error(coordinator, monkeypatch, autojump_clock):
    await commit_in_transaction(coordinator)

    def full(batch):
        raise LogStorageError(coordinator.offsets.directory, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(coordinator.offsets._log._log, "append", full)
    assert await refusal(coordinator.complete_transaction, PRODUCER_ID, EPOCH, True) == ErrorCode.KAFKA_STORAGE_ERROR
    assert coordinator.offsets.pending_partitions(GROUP) == {("t", 0)}


async def test_an_empty_group_with_only_pending_offsets_outlives_the_clean_up_and_a_restart(
        tmp_path, nursery, autojump_clock):
    coordinator = GroupCoordinator(OffsetStore(tmp_path))
    nursery.start_soon(coordinator.run)
    await commit_in_transaction(coordinator)
    await trio.sleep(11 * 60)
    assert coordinator.groups[GROUP].state is GroupState.EMPTY
    coordinator.close()
    reopened = GroupCoordinator(OffsetStore(tmp_path))
    assert reopened.groups[GROUP].state is GroupState.EMPTY
    assert fetched(reopened, GROUP, [("t", 0)], require_stable=True) == {("t", 0): ErrorCode.UNSTABLE_OFFSET_COMMIT}
    reopened.close()


async def test_deleting_a_group_or_its_offsets_drops_pending_ones(coordinator, autojump_clock):
    await commit_in_transaction(coordinator, "gone")
    assert codes(await coordinator.delete_groups(["gone"])) == {"gone": ErrorCode.NONE}
    await commit_in_transaction(coordinator, "trimmed", producer_id=PRODUCER_ID + 1)
    assert codes(await coordinator.delete_offsets("trimmed", [("t", 0)])) == {("t", 0): ErrorCode.NONE}
    # As Kafka's offset clean-up: an empty group left without offsets is gone.
    assert "gone" not in coordinator.groups and "trimmed" not in coordinator.groups
    for producer_id in (PRODUCER_ID, PRODUCER_ID + 1):
        assert not await coordinator.complete_transaction(producer_id, EPOCH, True)
    assert fetched(coordinator, "gone", None) == fetched(coordinator, "trimmed", None) == {}
