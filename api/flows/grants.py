"""The grant views each party may see: the owner (or agent) its own, the grantee those made to
it, a regulator all; a suspended subject only its own, to withdraw them."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import Request, Response

from api import _paging, _store, errors
from api.auth import Member, MemberStatus, Role
from api.chain import GrantView
from api.flows._shared import (
    b32,
    existing_grant,
    fields_for_asset,
    listing_scope,
    may_act_for,
    terms_of,
)
from api.models import GrantPublic
from api.services import Services
from api.terms import describe_terms, field_names


async def list_grants(
    services: Services,
    member: Member,
    request: Request,
    response: Response,
    *,
    limit: int,
    cursor: str | None,
) -> list[GrantPublic]:
    if member.status == MemberStatus.SUSPENDED:
        # A suspended subject still lists its own grants, to withdraw them; nobody else does.
        if not member.roles & Role.SUBJECT:
            raise errors.MemberSuspendedError(f"{member.address} is suspended")
        scope: dict[str, str] = {"owner": member.address}
    else:
        scope = listing_scope(
            member,
            [(Role.REGULATOR, None), (Role.CONSUMER, "grantee"), (Role.SUBJECT, "owner")],
            "only subjects, institutions and regulators have grants to list",
        )
    rows = await _paging.fetch(
        request,
        response,
        _store.GRANTS,
        cursor,
        limit,
        lambda after, n: _store.list_grants(services.engine, **scope, after=after, limit=n),
    )
    # Chain reads per row of this page (at most ``limit``), never per row of the table.
    out = []
    for row in rows:
        view = await services.reads.grant(b32(row["grant_id"]))
        out.append(await _public(services, view, row))
    return out


async def get_grant(services: Services, member: Member, grant_id: str) -> GrantPublic:
    view = await existing_grant(services, grant_id)
    owner = (await services.reads.asset(view.grant.asset_id)).owner
    if member.status == MemberStatus.SUSPENDED:
        # A suspended member sees only what it may still withdraw: its own grants.
        if not await may_act_for(services, owner, member.address):
            raise errors.MemberSuspendedError(f"{member.address} is suspended")
    elif not await _visible(services, member, view, owner):
        raise errors.ForbiddenError(f"{member.address} is not a party to grant {grant_id}")
    row = await to_thread.run_sync(_store.get_grant, services.engine, grant_id)
    return await _public(services, view, row)


async def _public(services: Services, view: GrantView, row: dict[str, Any] | None) -> GrantPublic:
    asset_row = await to_thread.run_sync(
        _store.get_asset, services.engine, "0x" + view.grant.asset_id.hex()
    )
    fields = await fields_for_asset(services, asset_row)
    terms = terms_of(view)
    owner = (
        asset_row["owner"] if asset_row else (await services.reads.asset(view.grant.asset_id)).owner
    )
    uses = view.grant.uses
    if not view.grant.max_uses:
        # An unlimited grant's counter is not kept on chain: its uses are its Accessed events.
        uses = await to_thread.run_sync(
            _store.count_accesses, services.engine, "0x" + view.grant_id.hex()
        )
    return GrantPublic(
        grant_id="0x" + view.grant_id.hex(),
        asset_id=terms.asset_id,
        owner=owner,
        grantor=row["grantor"] if row else None,
        grantee=view.grant.grantee,
        terms=terms,
        terms_text=describe_terms(terms, fields, asset_row),
        fields=field_names(view.grant.fields_mask, fields) if fields else None,
        uses=uses,
        status=view.status,
        block=view.block,
    )


async def _visible(services: Services, member: Member, view: GrantView, owner: str) -> bool:
    if member.has(Role.REGULATOR):
        return True
    if view.grant.grantee.lower() == member.address.lower():
        return True
    return await may_act_for(services, owner, member.address)
