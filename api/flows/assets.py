"""The asset views: a subject its own (or its principal's), an issuer those it issued, a
regulator all; the sealed asset only to the owner or its agent."""

from __future__ import annotations

import base64
from typing import Any

from anyio import to_thread
from fastapi import Request, Response

from api import _paging, _store, errors
from api.auth import Member, Role
from api.chain import AssetView
from api.flows._shared import b32, hex32, listing_scope, may_act_for
from api.models import AssetPublic, AssetSealed, TxRef
from api.services import Services
from ledger.address import to_checksum_address

ZERO32 = b"\0" * 32


def public(row: dict[str, Any], view: AssetView | None) -> AssetPublic:
    """An asset row and its on-chain status (``unknown`` without a view), in the public shape."""
    return AssetPublic(
        asset_id=row["asset_id"],
        owner=to_checksum_address(row["owner"]),
        issuer=to_checksum_address(row["issuer"]),
        schema_id=row["schema_id"],
        version=row["version"],
        status=view.status.name.lower() if view is not None else "unknown",
        root=row["root"],
        ciphertext_digest=row["ciphertext_digest"],
        previous=row.get("previous"),
        next=hex32(view.next) if view is not None and view.next != ZERO32 else None,
        anchor=TxRef(tx_hash=row["anchor_tx"], block=row["anchor_block"]),
    )


async def list_assets(
    services: Services,
    member: Member,
    request: Request,
    response: Response,
    *,
    limit: int,
    cursor: str | None,
) -> list[AssetPublic]:
    scope = listing_scope(
        member,
        [(Role.REGULATOR, None), (Role.ISSUER, "issuer"), (Role.SUBJECT, "owner")],
        "institutions see data only through grants (/v1/access)",
    )
    rows = await _paging.fetch(
        request,
        response,
        _store.ASSETS,
        cursor,
        limit,
        lambda after, n: _store.list_assets(services.engine, **scope, after=after, limit=n),
    )
    # One chain read per row of this page (at most ``limit``), never per row of the table.
    return [public(r, await services.reads.asset(b32(r["asset_id"]))) for r in rows]


async def get_asset(services: Services, member: Member, asset_id: str) -> AssetPublic:
    row = await _visible_asset(services, member, asset_id)
    return public(row, await services.reads.asset(b32(asset_id)))


async def get_sealed(services: Services, member: Member, asset_id: str) -> AssetSealed:
    row = await _visible_asset(services, member, asset_id)
    if not await may_act_for(services, row["owner"], member.address):
        raise errors.NotOwnerError(f"only the owner of {asset_id} may fetch the sealed asset")
    sealed = await to_thread.run_sync(services.vault.get_sealed, asset_id)
    if sealed is None:
        raise errors.AssetNotFoundError(f"the ciphertext of {asset_id} is gone")
    answer = public(row, await services.reads.asset(b32(asset_id)))
    return AssetSealed(**answer.model_dump(), sealed=base64.b64encode(sealed).decode())


async def _visible_asset(services: Services, member: Member, asset_id: str) -> dict[str, Any]:
    row = await to_thread.run_sync(_store.get_asset, services.engine, asset_id)
    if row is None:
        raise errors.AssetNotFoundError(f"no asset {asset_id}")
    me = member.address.lower()
    if member.has(Role.REGULATOR) or row["issuer"] == me:
        return row
    if await may_act_for(services, row["owner"], member.address):
        return row
    raise errors.ForbiddenError(
        f"{member.address} is neither owner, issuer nor regulator of {asset_id}"
    )
