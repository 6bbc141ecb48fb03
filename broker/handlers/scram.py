"""DescribeUserScramCredentials (50), AlterUserScramCredentials (51): users' SCRAM credentials.

As in Kafka they are answered on any listener, SASL or not, so that credentials can be set up
before a client authenticates with them; describing them needs DESCRIBE on the cluster, changing
them ALTER."""

from __future__ import annotations

from broker.acls import ResourceType, authorized
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, error_fields, handles
from broker.scram import ScramCredentialDeletion, ScramCredentialUpsertion
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.scram import ALTER_USER_SCRAM_CREDENTIALS_RESPONSE, DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE

_Description = DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE.DescribeUserScramCredentialsResult
_CredentialInfo = DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE.CredentialInfo
_Alteration = ALTER_USER_SCRAM_CREDENTIALS_RESPONSE.AlterUserScramCredentialsResult


@handles(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS)
async def describe_user_scram_credentials(broker: Services, header, request):
    if not authorized(broker.authorizer, AclOperation.DESCRIBE, ResourceType.CLUSTER):
        raise ApiError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    users = None if request.users is None else [user.name for user in request.users]
    results = []
    for user, found in broker.scram_credentials.describe(users):
        if isinstance(found, dict):
            fields = {"error_message": None, "credential_infos": [
                _CredentialInfo(mechanism=mechanism, iterations=credential.iterations)
                for mechanism, credential in found.items()]}
        else:
            fields = error_fields(_Description, found)
        results.append(_Description(user=user, **fields))
    return DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE(error_message=None, results=results)


@handles(ApiKey.ALTER_USER_SCRAM_CREDENTIALS)
async def alter_user_scram_credentials(broker: Services, header, request):
    if not authorized(broker.authorizer, AclOperation.ALTER, ResourceType.CLUSTER):
        # No top-level error: each user named is answered it, nothing altered (Kafka's getErrorResponse).
        denied = error_fields(_Alteration, ApiError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                                    "Cluster authorization failed."))
        users = sorted({*(d.name for d in request.deletions), *(u.name for u in request.upsertions)})
        return ALTER_USER_SCRAM_CREDENTIALS_RESPONSE(results=[_Alteration(user=user, **denied) for user in users])
    outcomes = await broker.scram_credentials.alter(
        [ScramCredentialDeletion(d.name, d.mechanism) for d in request.deletions],
        [ScramCredentialUpsertion(u.name, u.mechanism, u.iterations, u.salt, u.salted_password)
         for u in request.upsertions])
    return ALTER_USER_SCRAM_CREDENTIALS_RESPONSE(results=[
        _Alteration(user=user, **({"error_message": None} if error is None else error_fields(_Alteration, error)))
        for user, error in outcomes])
