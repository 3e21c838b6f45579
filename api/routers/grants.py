"""Consents: a subject's signed grant (plus its key package) relayed; revoke, pause, resume;
the grant views each party may see; ``verify`` for the grantee. The rules live in
:mod:`api.flows` (``grant``, ``revoke``, ``grants``, ``verify``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response, status

from api import _paging, errors
from api.deps import Consumer, CurrentMember, MemberAnyStatus, ServicesDep
from api.flows import grant, grants, revoke, verify
from api.models import ConsentReceipt, GrantAction, GrantCreate, GrantPublic, Verdict
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/grants", tags=["grants"])

GrantId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="bytes32 grant id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentReceipt,
    summary="Relay a subject's signed grant and store its key package; returns the consent receipt",
    responses=errors.problem_responses(
        errors.InvalidRequestError,
        errors.InvalidVaultDataError,
        errors.KeyPackageMismatchError,
        errors.AssetNotFoundError,
        errors.AssetNotActiveError,
        errors.NotOwnerError,
        errors.GrantExpiryPastError,
        errors.GrantWindowInvalidError,
        errors.GrantGranteeNotMemberError,
        errors.GrantGranteeNotConsumerError,
        errors.GrantGranteeSuspendedError,
        errors.RequestSignatureExpiredError,
        errors.ContractRejectedError,
        errors.RelayFailedError,
        errors.ConflictError,
    ),
)
async def create_grant(
    body: GrantCreate, member: CurrentMember, services: ServicesDep
) -> ConsentReceipt:
    return await grant.grant(services, member, body)


_ACTION_ERRORS = errors.problem_responses(
    errors.GrantNotFoundError,
    errors.NotOwnerError,
    errors.ContractRejectedError,
    errors.RelayFailedError,
)
_RESUME_ERRORS = errors.problem_responses(
    errors.GrantNotFoundError,
    errors.NotOwnerError,
    errors.MemberSuspendedError,
    errors.ContractRejectedError,
    errors.RelayFailedError,
)


@router.post(
    "/{grant_id}/revoke",
    response_model=ConsentReceipt,
    responses=_ACTION_ERRORS,
    summary="Relay a signed revocation; the key package is deleted (a suspended owner may revoke)",
)
async def revoke_grant(
    grant_id: GrantId, body: GrantAction, member: MemberAnyStatus, services: ServicesDep
) -> ConsentReceipt:
    return await revoke.revoke(services, member, grant_id, body)


@router.post(
    "/{grant_id}/pause",
    response_model=ConsentReceipt,
    responses=_ACTION_ERRORS,
    summary="Relay a signed pause (a suspended owner may pause)",
)
async def pause_grant(
    grant_id: GrantId, body: GrantAction, member: MemberAnyStatus, services: ServicesDep
) -> ConsentReceipt:
    return await revoke.pause(services, member, grant_id, body)


@router.post(
    "/{grant_id}/resume",
    response_model=ConsentReceipt,
    responses=_RESUME_ERRORS,
    summary="Relay a signed resumption (an active owner or live agent)",
)
async def resume_grant(
    grant_id: GrantId, body: GrantAction, member: CurrentMember, services: ServicesDep
) -> ConsentReceipt:
    return await revoke.resume(services, member, grant_id, body)


@router.get(
    "",
    response_model=list[GrantPublic],
    summary="Grants the caller may see: a subject its own, an institution those made to it, "
    "a regulator all",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(
            errors.RoleRequiredError, errors.InvalidCursorError, errors.MemberSuspendedError
        ),
    },
)
async def list_grants(
    request: Request,
    response: Response,
    member: MemberAnyStatus,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[GrantPublic]:
    return await grants.list_grants(services, member, request, response, limit=limit, cursor=cursor)


@router.get(
    "/{grant_id}",
    response_model=GrantPublic,
    summary="One grant, as the chain has it now (owner/agent, grantee or regulator)",
    responses=errors.problem_responses(
        errors.GrantNotFoundError, errors.ForbiddenError, errors.MemberSuspendedError
    ),
)
async def get_grant(
    grant_id: GrantId, member: MemberAnyStatus, services: ServicesDep
) -> GrantPublic:
    return await grants.get_grant(services, member, grant_id)


@router.get(
    "/{grant_id}/verify",
    response_model=Verdict,
    summary="May the calling institution read these fields under this grant now? "
    "(the chain's check on the latest state, at the time an access would be recorded)",
    responses=errors.problem_responses(
        errors.RoleRequiredError, errors.GrantNotFoundError, errors.NotGranteeError
    ),
)
async def verify_grant(
    grant_id: GrantId,
    member: Consumer,
    services: ServicesDep,
    fields_mask: Annotated[int, Query(ge=1, le=2**64 - 1, description="bit i = field i")],
) -> Verdict:
    return await verify.verify(services, member, grant_id, fields_mask)
