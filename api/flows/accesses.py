"""Who accessed what, from the event index: a subject sees accesses to its data, an
institution its own, a regulator all."""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import BaseModel

from api import _paging, _store
from api.auth import Member, Role
from api.flows._shared import listing_scope
from api.services import Services


class AccessEntry(BaseModel):
    grant_id: str
    grantee: str
    owner: str
    asset_id: str
    fields_mask: int
    purpose: int
    use: int
    block: int
    block_timestamp: int
    tx_hash: str


async def list_accesses(
    services: Services,
    member: Member,
    request: Request,
    response: Response,
    *,
    limit: int,
    cursor: str | None,
) -> list[AccessEntry]:
    scope = listing_scope(
        member,
        [(Role.REGULATOR, None), (Role.SUBJECT, "owner"), (Role.CONSUMER, "grantee")],
        "only subjects, institutions and regulators have accesses",
    )
    rows = await _paging.fetch(
        request,
        response,
        _store.ACCESSES,
        cursor,
        limit,
        lambda after, n: _store.list_accesses(services.engine, **scope, after=after, limit=n),
    )
    return [
        AccessEntry(
            grant_id=r["grant_id"],
            grantee=r["grantee"],
            owner=r["owner"],
            asset_id=r["asset_id"],
            fields_mask=r["fields_mask"],
            purpose=r["purpose"],
            use=r["use"],
            block=r["block_number"],
            block_timestamp=r["block_timestamp"],
            tx_hash=r["tx_hash"],
        )
        for r in rows
    ]
