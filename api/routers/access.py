"""Pulls (recorded on-chain first, then served: :mod:`api.flows.pull`) and the access log
(:mod:`api.flows.accesses`)."""

from __future__ import annotations

from fastapi import Request, Response

from api import _paging, errors
from api.deps import Consumer, CurrentMember, ServicesDep
from api.flows import accesses
from api.flows import pull as pull_flow
from api.flows.accesses import AccessEntry
from api.models import AccessCreate, AccessPublic
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/access", tags=["access"])


@router.post(
    "",
    response_model=AccessPublic,
    summary="Pull granted fields: recorded on-chain first, then a vault disclosure (the granted "
    "fields' ciphertexts + Merkle proofs + key package) and the anchor",
    responses=errors.problem_responses(
        errors.UnauthenticatedError,
        errors.BadSignatureError,
        errors.ReplayedRequestError,
        errors.MemberSuspendedError,
        errors.RoleRequiredError,
        errors.GrantNotFoundError,
        errors.NotGranteeError,
        errors.GrantRevokedError,
        errors.GrantExpiredError,
        errors.GrantNotYetValidError,
        errors.GrantPausedError,
        errors.UsesExhaustedError,
        errors.GranteeSuspendedError,
        errors.AssetDisputedError,
        errors.AssetRetiredError,
        errors.AssetSupersededError,
        errors.FieldsNotGrantedError,
        errors.RequestSignatureExpiredError,
        errors.AccessNonceUsedError,
        errors.FieldsMaskMismatchError,
        errors.RequestSignatureInvalidError,
        errors.KeyPackageMissingError,
        errors.ChainUnavailableError,
    ),
)
async def pull(body: AccessCreate, member: Consumer, services: ServicesDep) -> AccessPublic:
    return await pull_flow.pull(services, member, body)


@router.get(
    "",
    response_model=list[AccessEntry],
    summary="Who accessed what (from the event index): a subject sees accesses to its data, "
    "an institution its own, a regulator all",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(
            errors.RoleRequiredError, errors.NotReadyError, errors.InvalidCursorError
        ),
    },
)
async def list_accesses(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[AccessEntry]:
    return await accesses.list_accesses(
        services, member, request, response, limit=limit, cursor=cursor
    )
