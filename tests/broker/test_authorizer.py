"""The authorizer's decisions (broker/acls.py Authorizer.authorize, authorize_any and
authorized_operations), rule by rule with Kafka 3.9's semantics: the cases are the behaviour
Kafka's StandardAuthorizerTest and AclAuthorizerTest check, rewritten for this broker."""

from __future__ import annotations

import pytest

from broker.acls import (
    AccessControlEntry, AclBinding, AclBindingFilter, AclPermissionType, Authorizer, PatternType, ResourcePattern,
    ResourceType,
)
from broker.authorized_operations import GROUP, TOPIC, AclOperation, bits

LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
Op = AclOperation
ALICE, BOB = "User:alice", "User:bob"
HOST, OTHER_HOST = "192.168.0.1", "192.168.0.2"


def acl(name: str, operation: AclOperation = Op.READ, permission: AclPermissionType = ALLOW, *,
        pattern_type: PatternType = LITERAL, resource_type: ResourceType = ResourceType.TOPIC,
        principal: str = ALICE, host: str = "*") -> AclBinding:
    return AclBinding(ResourcePattern(resource_type, name, pattern_type),
                      AccessControlEntry(principal, host, operation, permission))


async def authorizer_with(data_dir, *bindings: AclBinding, **settings) -> Authorizer:
    data_dir.mkdir(parents=True, exist_ok=True)
    authorizer = Authorizer.open(data_dir, **settings)
    await authorizer.create_acls(bindings)
    return authorizer


def may(authorizer: Authorizer, operation: AclOperation = Op.READ, name: str = "payments", *,
        resource_type: ResourceType = ResourceType.TOPIC, principal: str = ALICE, host: str = HOST) -> bool:
    return authorizer.authorize(principal, host, operation, resource_type, name)


async def test_a_literal_allow_grants_its_principal_its_operation_on_that_resource_only(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("payments"))
    assert may(authorizer)
    assert not may(authorizer, principal=BOB)
    assert not may(authorizer, Op.WRITE)
    assert not may(authorizer, name="payments2")
    assert not may(authorizer, name="payment")
    # A group of the same name is another resource.
    assert not may(authorizer, resource_type=ResourceType.GROUP)


async def test_no_acl_at_all_denies_unless_allow_everyone_if_no_acl_found(tmp_path):
    assert not may(await authorizer_with(tmp_path / "closed"))
    assert may(await authorizer_with(tmp_path / "open", allow_everyone_if_no_acl_found=True))


async def test_allow_everyone_applies_only_to_resources_no_acl_names_whoever_it_is_for(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("payments", principal=BOB), acl("pay", pattern_type=PREFIXED,
                                                                                     resource_type=ResourceType.GROUP),
                                       allow_everyone_if_no_acl_found=True)
    # An ACL for bob names the topic: alice is denied, as no ACL of hers allows it.
    assert not may(authorizer)
    assert may(authorizer, principal=BOB)
    assert may(authorizer, name="orders")
    # A prefixed ACL names every resource it selects.
    assert not may(authorizer, name="payroll", resource_type=ResourceType.GROUP, principal=BOB)
    assert may(authorizer, name="orders", resource_type=ResourceType.GROUP, principal=BOB)


async def test_the_wildcard_principal_and_wildcard_host_match_everyone_and_everywhere(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("payments", principal="User:*"),
                                       acl("orders", host=HOST))
    assert may(authorizer, principal=BOB) and may(authorizer, principal="User:ANONYMOUS")
    assert may(authorizer, name="orders")
    assert not may(authorizer, name="orders", host=OTHER_HOST)


async def test_the_wildcard_resource_matches_every_name_of_its_type(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("*"))
    assert may(authorizer, name="payments") and may(authorizer, name="anything")
    assert not may(authorizer, name="payments", resource_type=ResourceType.GROUP)


async def test_a_prefixed_acl_matches_the_names_starting_with_it(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("pay", pattern_type=PREFIXED),
                                       acl("orders.eu.", Op.WRITE, pattern_type=PREFIXED))
    assert may(authorizer, name="pay") and may(authorizer, name="payments") and may(authorizer, name="payroll")
    assert not may(authorizer, name="pa") and not may(authorizer, name="xpay")
    assert may(authorizer, Op.WRITE, "orders.eu.west")
    assert not may(authorizer, Op.WRITE, "orders.eu") and not may(authorizer, Op.WRITE, "orders.us.east")


async def test_deny_wins_over_allow_whichever_pattern_gives_either(tmp_path):
    authorizer = await authorizer_with(
        tmp_path, acl("payments"), acl("*", Op.WRITE), acl("pay", Op.WRITE, DENY, pattern_type=PREFIXED),
        acl("orders", Op.ALL), acl("*", Op.READ, DENY, principal=BOB), acl("orders", principal=BOB),
        acl("audit", Op.READ), acl("audit", Op.READ, DENY, principal="User:*"),
        acl("hosts", Op.READ), acl("hosts", Op.READ, DENY, host=OTHER_HOST))
    assert may(authorizer)
    assert not may(authorizer, Op.WRITE)              # denied by the prefix, allowed by the wildcard
    assert may(authorizer, Op.WRITE, "orders")         # the wildcard allows, no deny applies
    assert not may(authorizer, name="orders", principal=BOB)  # a deny on the wildcard resource
    assert not may(authorizer, name="audit")           # a deny for every principal
    assert may(authorizer, name="hosts") and not may(authorizer, name="hosts", host=OTHER_HOST)


async def test_all_allows_and_denies_every_operation(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("payments", Op.ALL), acl("orders", Op.ALL),
                                       acl("orders", Op.ALL, DENY, principal=ALICE, host=OTHER_HOST))
    for operation in (Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE, Op.DESCRIBE_CONFIGS,
                      Op.ALTER_CONFIGS):
        assert may(authorizer, operation)
        assert not may(authorizer, operation, "orders", host=OTHER_HOST)


@pytest.mark.parametrize("allowed, implied", [
    (Op.READ, Op.DESCRIBE), (Op.WRITE, Op.DESCRIBE), (Op.DELETE, Op.DESCRIBE), (Op.ALTER, Op.DESCRIBE),
    (Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS),
])
async def test_an_allowed_operation_allows_the_ones_it_implies_and_no_deny_of_it_denies_them(tmp_path, allowed,
                                                                                             implied):
    authorizer = await authorizer_with(tmp_path, acl("payments", allowed), acl("orders", allowed),
                                       acl("orders", allowed, DENY, principal=ALICE))
    assert may(authorizer, implied)
    # A DENY denies its own operation only: not those it implies, which its ALLOW still allows.
    assert not may(authorizer, allowed, "orders")
    assert may(authorizer, implied, "orders")
    assert may(await authorizer_with(tmp_path / "d", acl("t", allowed), acl("t", implied, DENY)), allowed, "t")


async def test_implications_go_one_way_only(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("payments", Op.DESCRIBE), acl("orders", Op.DESCRIBE_CONFIGS),
                                       acl("audit", Op.CREATE))
    assert not may(authorizer, Op.READ)
    assert not may(authorizer, Op.ALTER_CONFIGS, "orders")
    assert not may(authorizer, Op.DESCRIBE, "orders")
    # CREATE implies nothing, DESCRIBE included (Kafka's list: READ, WRITE, DELETE, ALTER).
    assert not may(authorizer, Op.DESCRIBE, "audit")


async def test_a_deny_of_describe_denies_describe_despite_an_allow_of_read(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("payments", Op.READ), acl("payments", Op.DESCRIBE, DENY))
    assert may(authorizer, Op.READ)
    assert not may(authorizer, Op.DESCRIBE)


async def test_super_users_may_do_anything_even_what_an_acl_denies(tmp_path):
    authorizer = await authorizer_with(tmp_path, acl("*", Op.ALL, DENY, principal="User:*"),
                                       super_users=("User:admin",))
    assert may(authorizer, Op.ALTER, principal="User:admin")
    assert may(authorizer, Op.CLUSTER_ACTION, "kafka-cluster", resource_type=ResourceType.CLUSTER,
               principal="User:admin")
    assert not may(authorizer)
    # A principal is a type and a name: another type is someone else.
    assert not may(authorizer, principal="Group:admin")


async def test_answers_follow_the_acls_as_they_are_created_and_deleted_and_reopened(tmp_path):
    authorizer = await authorizer_with(tmp_path)
    assert not may(authorizer)
    await authorizer.create_acls([acl("pay", pattern_type=PREFIXED)])
    assert may(authorizer)
    await authorizer.create_acls([acl("payments", permission=DENY)])
    assert not may(authorizer)
    assert may(Authorizer.open(tmp_path), name="payroll")
    assert not may(Authorizer.open(tmp_path))
    await authorizer.delete_acls([AclBindingFilter(ResourceType.ANY, None, PatternType.ANY, None, None,
                                                   AclOperation.ANY, DENY)])
    assert may(authorizer)


@pytest.mark.parametrize("stored, expected", [
    ([acl("payments", Op.WRITE)], True),
    ([acl("payments", Op.ALL)], True),
    ([acl("*", Op.WRITE)], True),
    ([acl("pay", Op.WRITE, pattern_type=PREFIXED)], True),
    # An implied operation does not count here (Kafka's authorizeByResourceType).
    ([acl("payments", Op.READ)], False),
    ([acl("payments", Op.WRITE, principal=BOB)], False),
    ([acl("payments", Op.WRITE, host=OTHER_HOST)], False),
    ([acl("payments", Op.WRITE), acl("payments", Op.WRITE, DENY)], False),
    ([acl("payments", Op.WRITE), acl("orders", Op.WRITE), acl("payments", Op.WRITE, DENY)], True),
    ([acl("payments", Op.WRITE), acl("*", Op.WRITE, DENY)], False),
    ([acl("payments", Op.WRITE), acl("pa", Op.WRITE, DENY, pattern_type=PREFIXED)], False),
    ([acl("pay", Op.WRITE, pattern_type=PREFIXED), acl("pay", Op.WRITE, DENY, pattern_type=PREFIXED)], False),
    ([acl("pay", Op.WRITE, pattern_type=PREFIXED), acl("payments", Op.WRITE, DENY, pattern_type=PREFIXED)], True),
    ([acl("payments", Op.WRITE, pattern_type=PREFIXED), acl("pay", Op.WRITE, DENY, pattern_type=PREFIXED)], False),
    ([acl("payments", Op.WRITE, resource_type=ResourceType.GROUP)], False),
])
async def test_authorize_any_finds_an_allow_of_the_operation_on_some_resource_no_deny_covers(tmp_path, stored,
                                                                                             expected):
    authorizer = await authorizer_with(tmp_path, *stored)
    assert authorizer.authorize_any(ALICE, HOST, Op.WRITE, ResourceType.TOPIC) is expected


async def test_authorize_any_allows_super_users_and_everyone_where_no_acl_is_found(tmp_path):
    authorizer = await authorizer_with(tmp_path / "super", acl("*", Op.WRITE, DENY), super_users=(ALICE,))
    assert authorizer.authorize_any(ALICE, HOST, Op.WRITE, ResourceType.TOPIC)
    everyone = await authorizer_with(tmp_path / "everyone", allow_everyone_if_no_acl_found=True)
    assert everyone.authorize_any(ALICE, HOST, Op.WRITE, ResourceType.TOPIC)


async def test_authorized_operations_are_the_supported_operations_the_principal_may_perform(tmp_path):
    authorizer = await authorizer_with(
        tmp_path, acl("payments", Op.WRITE), acl("payments", Op.ALTER_CONFIGS),
        acl("billing", Op.READ, resource_type=ResourceType.GROUP), acl("kafka-cluster", Op.ALL,
                                                                       resource_type=ResourceType.CLUSTER))
    assert authorizer.authorized_operations(ALICE, HOST, ResourceType.TOPIC, "payments") == bits(
        [Op.WRITE, Op.DESCRIBE, Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS])
    assert authorizer.authorized_operations(ALICE, HOST, ResourceType.GROUP, "billing") == bits(
        [Op.READ, Op.DESCRIBE])
    assert authorizer.authorized_operations(BOB, HOST, ResourceType.TOPIC, "payments") == 0
    super_user = Authorizer.open(tmp_path, super_users=(BOB,))
    assert super_user.authorized_operations(BOB, HOST, ResourceType.TOPIC, "x") == TOPIC
    assert super_user.authorized_operations(BOB, HOST, ResourceType.GROUP, "x") == GROUP
    # ALL on the cluster is every operation the cluster supports, and nothing it does not.
    cluster = authorizer.authorized_operations(ALICE, HOST, ResourceType.CLUSTER, "kafka-cluster")
    assert cluster == bits([Op.CREATE, Op.ALTER, Op.DESCRIBE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS,
                            Op.ALTER_CONFIGS, Op.IDEMPOTENT_WRITE])
