"""Sealed accesses: a department records one, a regulator extends one and lists the overdue,
anyone holding the opening reveals one after its date; subjects list their own. The rules
live in :mod:`api.flows.sealed` (and in the contract, which the service pre-flights)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response, status

from api import _paging, errors
from api.deps import CurrentMember, Issuer, Regulator, ServicesDep
from api.flows import sealed
from api.models import Address, SealAction, SealPublic
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/sealed", tags=["sealed"])

SealId = Annotated[int, Path(ge=1, le=2**63 - 1, description="sealed access record id")]
_RELAY_ERRORS = (
    errors.InvalidRequestError,
    errors.ContractRejectedError,
    errors.RelayFailedError,
    errors.ConflictError,
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SealPublic,
    summary="Relay a department's signed `seal` (a sealed access record) to the companion",
    responses=errors.problem_responses(
        *_RELAY_ERRORS,
        errors.NotIssuerError,
        errors.AssetNotFoundError,
        errors.SealInvalidError,
    ),
)
async def create_seal(body: SealAction, member: Issuer, services: ServicesDep) -> SealPublic:
    return await sealed.seal(services, member, body)


@router.get(
    "",
    response_model=list[SealPublic],
    summary="Sealed access records: a subject's own, or (regulator) everyone's, in order",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.RoleRequiredError, errors.InvalidCursorError),
    },
)
async def list_seals(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    subject: Annotated[Address | None, Query(description="Only this subject's")] = None,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[SealPublic]:
    return await sealed.list_seals(
        services, member, request, response, subject=subject, limit=limit, cursor=cursor
    )


@router.get(
    "/overdue",
    response_model=list[SealPublic],
    summary="Seals still closed at or after their unseal date, at the chain's head (regulator)",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.RoleRequiredError, errors.InvalidCursorError),
    },
)
async def list_overdue(
    request: Request,
    response: Response,
    member: Regulator,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[SealPublic]:
    return await sealed.list_overdue(
        services, member, request, response, limit=limit, cursor=cursor
    )


@router.get(
    "/{seal_id}",
    response_model=SealPublic,
    summary="One sealed access record (its subject, its department, or a regulator)",
    responses=errors.problem_responses(errors.SealNotFoundError),
)
async def get_seal(seal_id: SealId, member: CurrentMember, services: ServicesDep) -> SealPublic:
    return await sealed.get_seal(services, member, seal_id)


@router.post(
    "/{seal_id}/extend",
    response_model=SealPublic,
    summary="Relay a regulator's signed `extend` (a later unseal date, with a reason reference)",
    responses=errors.problem_responses(
        *_RELAY_ERRORS,
        errors.SealNotFoundError,
        errors.SealClosedError,
        errors.SealExtensionRefusedError,
        errors.SealInvalidError,
        errors.RoleRequiredError,
    ),
)
async def extend_seal(
    seal_id: SealId, body: SealAction, member: Regulator, services: ServicesDep
) -> SealPublic:
    return await sealed.extend(services, member, seal_id, body)


@router.post(
    "/{seal_id}/unseal",
    response_model=SealPublic,
    summary="Relay a signed `unseal`: the opening, checked against the commitment on chain",
    responses=errors.problem_responses(
        *_RELAY_ERRORS,
        errors.SealNotFoundError,
        errors.SealClosedError,
        errors.SealTooEarlyError,
        errors.SealOpeningMismatchError,
    ),
)
async def unseal_seal(
    seal_id: SealId, body: SealAction, member: CurrentMember, services: ServicesDep
) -> SealPublic:
    return await sealed.unseal(services, member, seal_id, body)
