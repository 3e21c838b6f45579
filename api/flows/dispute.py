"""Dispute and resolution: the owner's (or agent's) signed ``disputeAsset``, the issuer's
signed ``resolveDispute``, each checked to name this asset and relayed as sent."""

from __future__ import annotations

from api import errors
from api.auth import Member
from api.flows._shared import b32, held_asset, hex32, ledger_call, may_act_for
from api.flows.assets import public
from api.models import AssetAction, AssetPublic
from api.services import Services
from ledger.abi import ledger_abi

_ABI = ledger_abi()


async def dispute(
    services: Services, member: Member, asset_id: str, body: AssetAction
) -> AssetPublic:
    view = await services.reads.asset(b32(asset_id))
    if not await may_act_for(services, view.owner, member.address):
        raise errors.NotOwnerError(f"{member.address} does not own asset {asset_id}")
    return await _relay_asset_action(services, member, asset_id, body, "disputeAsset", "dispute")


async def resolve(
    services: Services, member: Member, asset_id: str, body: AssetAction
) -> AssetPublic:
    view = await services.reads.asset(b32(asset_id))
    if view.issuer.lower() != member.address.lower():
        raise errors.NotIssuerError(f"asset {asset_id} was issued by {view.issuer}")
    return await _relay_asset_action(services, member, asset_id, body, "resolveDispute", "resolve")


async def _relay_asset_action(
    services: Services, member: Member, asset_id: str, body: AssetAction, fn: str, kind: str
) -> AssetPublic:
    row = await held_asset(services, asset_id)
    tx, args = ledger_call(services, member, body.raw_transaction, _ABI.fn(fn))
    if hex32(args[0]) != asset_id.lower():
        raise errors.InvalidRequestError(f"{fn} names another asset")
    await services.relay_member_tx(
        key=f"{kind}:{asset_id.lower()}:{tx.tx_hash}",
        kind=kind,
        payload={"asset_id": asset_id},
        tx=tx,
        on_confirmed=lambda _t, _b: None,
    )
    return public(row, await services.reads.asset(b32(asset_id)))
