"""Recall and deletion acknowledgements (:mod:`api.flows.lifecycle`): an institution relays
its signed acknowledgement; institutions, subjects and regulators list what is owed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from api import _paging, errors
from api.deps import Consumer, CurrentMember, ServicesDep
from api.flows import lifecycle
from api.flows.lifecycle import AcknowledgementPublic, OwedPublic
from api.models import AcknowledgementCreate
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/acknowledgements", tags=["acknowledgements"])


@router.post(
    "",
    response_model=AcknowledgementPublic,
    summary="Relay the institution's signed recall or deletion acknowledgement (recorded on "
    "chain once per grant and kind)",
    responses=errors.problem_responses(
        errors.UnauthenticatedError,
        errors.BadSignatureError,
        errors.ReplayedRequestError,
        errors.MemberSuspendedError,
        errors.RoleRequiredError,
        errors.GrantNotFoundError,
        errors.NotGranteeError,
        errors.AlreadyAcknowledgedError,
        errors.NotRecalledError,
        errors.GrantLiveError,
        errors.UsesMismatchError,
        errors.AcknowledgementInFutureError,
        errors.ContractRejectedError,
        errors.ChainUnavailableError,
    ),
)
async def acknowledge(
    body: AcknowledgementCreate, member: Consumer, services: ServicesDep
) -> AcknowledgementPublic:
    return await lifecycle.acknowledge(services, member, body)


@router.get(
    "/owed",
    response_model=list[OwedPublic],
    summary="Recalls and deletions owed (from the event index): an institution its own, a "
    "subject those of its grants, a regulator all",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(
            errors.UnauthenticatedError,
            errors.RoleRequiredError,
            errors.InvalidCursorError,
            errors.NotReadyError,
        ),
    },
)
async def owed(
    member: CurrentMember,
    services: ServicesDep,
    request: Request,
    response: Response,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
    outstanding: Annotated[
        bool, Query(description="Only grants with an acknowledgement still open")
    ] = True,
    institution: Annotated[
        str | None,
        Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="Regulator: one institution's"),
    ] = None,
) -> list[OwedPublic]:
    return await lifecycle.list_owed(
        services,
        member,
        request,
        response,
        outstanding=outstanding,
        institution=institution,
        limit=limit,
        cursor=cursor,
    )
