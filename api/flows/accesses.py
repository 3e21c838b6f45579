"""Who accessed what, from the event index: a subject sees accesses to its data, an
institution its own, a regulator all."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from anyio import to_thread
from fastapi import Request, Response
from pydantic import BaseModel

from api import _paging, errors
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
    after = _paging.decode_cursor("access", cursor, (int, int))
    rows = await to_thread.run_sync(
        lambda: _list_accesses(services, **scope, after=after, limit=limit + 1)
    )
    rows = _paging.page(
        request, response, "access", rows, limit, lambda r: (r["block_number"], r["log_index"])
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


def _list_accesses(
    services: Any,
    *,
    owner: str | None = None,
    grantee: str | None = None,
    after: tuple[Any, ...] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    from ledger.db import accesses

    table = accesses
    order = [table.c.block_number, table.c.log_index]
    stmt = sa.select(table).where(_paging.after(order, after)).order_by(*order).limit(limit)
    if owner is not None:
        stmt = stmt.where(table.c.owner == owner.lower())
    if grantee is not None:
        stmt = stmt.where(table.c.grantee == grantee.lower())
    try:
        with services.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        raise errors.NotReadyError("the access index is not built (indexer not running)") from exc
