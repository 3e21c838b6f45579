"""The member directory (roles from the chain, encryption keys checked against the chain);
the rules live in :mod:`api.flows.members`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response

from api import _paging, errors
from api.deps import CurrentMember, ServicesDep
from api.flows import members
from api.models import MemberKeyPublish, MemberPublic
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/members", tags=["members"])

AddressPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]


@router.get(
    "",
    response_model=list[MemberPublic],
    summary="Members who published a key (any member), by address, one page at a time",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.InvalidCursorError),
    },
)
async def directory(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[MemberPublic]:
    return await members.directory(services, request, response, limit=limit, cursor=cursor)


@router.get("/me", response_model=MemberPublic, summary="The caller as the chain has it")
async def me(member: CurrentMember, services: ServicesDep) -> MemberPublic:
    return await members.member(services, member.address)


@router.get(
    "/{address}",
    response_model=MemberPublic,
    summary="One member with its current encryption key (any member)",
    responses=errors.problem_responses(errors.NotFoundError),
)
async def get_member(
    address: AddressPath, member: CurrentMember, services: ServicesDep
) -> MemberPublic:
    return await members.member(services, address)


@router.put(
    "/me/key",
    response_model=MemberPublic,
    summary="Publish the caller's own bound encryption key (optionally relaying its KeyBinding)",
    responses=errors.problem_responses(
        errors.InvalidRequestError,
        errors.InvalidVaultDataError,
        errors.KeyNotCurrentError,
        errors.ContractRejectedError,
    ),
)
async def publish_key(
    body: MemberKeyPublish, member: CurrentMember, services: ServicesDep
) -> MemberPublic:
    return await members.publish_key(services, member, body)
