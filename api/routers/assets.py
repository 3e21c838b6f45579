"""Assets: issuers push sealed data and relay their signed anchors; subjects list and fetch
their own; disputes and their resolution; new versions."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from anyio import to_thread
from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Path, Request, Response, status

from api import _paging, _store, errors
from api._rawtx import RawTx
from api.auth import Member, Role
from api.chain import AssetView
from api.deps import CurrentMember, Issuer, ServicesDep
from api.models import AssetAction, AssetCreate, AssetPublic, AssetSealed, AssetVersionCreate, TxRef
from api.routers._shared import b32, hex32, ledger_call, listing_scope, may_act_for
from api.services import Services
from ledger.abi import ledger_abi

router = APIRouter(prefix="/assets", tags=["assets"])

AssetId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]
ZERO32 = b"\0" * 32
_ABI = ledger_abi()


def _public(row: dict[str, Any], view: AssetView | None) -> AssetPublic:
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


async def _issue(
    services: Services,
    member: Member,
    sealed_b64: str,
    tx: RawTx,
    *,
    expected: tuple[Any, ...],
    previous: str | None,
    owner: str,
    schema_id: str,
    version: int,
) -> AssetPublic:
    sealed = services.vault.decode_b64(sealed_b64, "sealed")
    asset_id = hex32(expected[0])
    schema = await to_thread.run_sync(_store.get_schema, services.engine, schema_id)
    if schema is None:
        raise errors.InvalidRequestError(f"schema {schema_id} is not registered with this service")
    owner_member = await services.chain.member(to_checksum_address(owner))
    # Parse and check before anything is stored or relayed (VaultError -> invalid_vault_data).
    await to_thread.run_sync(
        lambda: services.vault.check_sealed(
            sealed,
            asset_id=expected[0],
            version=version,
            root=expected[1],
            digest=expected[2],
            schema_fields=list(schema["fields"]),
            owner_key_digest=owner_member.enc_key_hash,
        )
    )
    row = {
        "asset_id": asset_id,
        "owner": owner.lower(),
        "issuer": member.address.lower(),
        "schema_id": schema_id.lower(),
        "version": version,
        "root": hex32(expected[-2]),
        "ciphertext_digest": hex32(expected[-1]),
        "previous": previous,
    }

    def prepare() -> None:
        services.vault.put_sealed(asset_id, sealed, owner=owner)

    def cleanup() -> None:
        services.vault.delete_sealed(asset_id)

    def store(tx_hash: str, block: int) -> None:
        _store.put_asset(services.engine, row | {"anchor_tx": tx_hash, "anchor_block": block})

    await services.relay_member_tx(
        key=f"asset:{asset_id}",
        kind="asset",
        payload={"row": row},
        tx=tx,
        prepare=prepare,
        on_confirmed=store,
        on_failed=cleanup,
    )
    stored = await to_thread.run_sync(_store.get_asset, services.engine, asset_id)
    assert stored is not None
    return _public(stored, await services.reads.asset(b32(asset_id)))


_ISSUE_ERRORS = errors.problem_responses(
    errors.RoleRequiredError,
    errors.InvalidRequestError,
    errors.InvalidVaultDataError,
    errors.SealedAssetMismatchError,
    errors.NotIssuerError,
    errors.ContractRejectedError,
    errors.RelayFailedError,
    errors.ConflictError,
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetPublic,
    summary="Store a sealed asset and relay the issuer's signed anchorAsset transaction; "
    "answers once it is confirmed",
    responses=_ISSUE_ERRORS,
)
async def issue_asset(body: AssetCreate, member: Issuer, services: ServicesDep) -> AssetPublic:
    tx, (asset_id, owner, schema_id, root, digest) = ledger_call(
        services, member, body.raw_transaction, _ABI.fn("anchorAsset")
    )
    # Schemas are owned (read from the chain): refused here, before anything is stored or mined.
    if not await services.reads.is_schema_issuer(schema_id, member.address):
        raise errors.NotIssuerError(
            f"{member.address} neither registered schema {hex32(schema_id)} nor was authorised "
            "on chain by the department that did"
        )
    return await _issue(
        services,
        member,
        body.sealed,
        tx,
        expected=(asset_id, root, digest),
        previous=None,
        owner=to_checksum_address(owner),
        schema_id=hex32(schema_id),
        version=1,
    )


@router.post(
    "/{asset_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetPublic,
    summary="Publish a new version (relaying the issuer's supersedeAsset transaction)",
    responses=_ISSUE_ERRORS,
)
async def new_version(
    asset_id: AssetId, body: AssetVersionCreate, member: Issuer, services: ServicesDep
) -> AssetPublic:
    old = await to_thread.run_sync(_store.get_asset, services.engine, asset_id)
    if old is None:
        raise errors.AssetNotFoundError(f"asset {asset_id} is not held by this vault")
    if old["issuer"] != member.address.lower():
        raise errors.NotIssuerError(f"asset {asset_id} was issued by {old['issuer']}")
    tx, (old_id, new_id, root, digest) = ledger_call(
        services, member, body.raw_transaction, _ABI.fn("supersedeAsset")
    )
    if hex32(old_id) != asset_id.lower():
        raise errors.InvalidRequestError("supersedeAsset names another asset")
    return await _issue(
        services,
        member,
        body.sealed,
        tx,
        expected=(new_id, root, digest),
        previous=asset_id.lower(),
        owner=old["owner"],
        schema_id=old["schema_id"],
        version=int(old["version"]) + 1,
    )


async def _relay_asset_action(
    services: Services, member: Member, asset_id: str, body: AssetAction, fn: str, kind: str
) -> AssetPublic:
    row = await to_thread.run_sync(_store.get_asset, services.engine, asset_id)
    if row is None:
        raise errors.AssetNotFoundError(f"asset {asset_id} is not held by this vault")
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
    return _public(row, await services.reads.asset(b32(asset_id)))


_ACTION_ERRORS = errors.problem_responses(
    errors.AssetNotFoundError,
    errors.NotOwnerError,
    errors.NotIssuerError,
    errors.InvalidRequestError,
    errors.ContractRejectedError,
)


@router.post(
    "/{asset_id}/dispute",
    response_model=AssetPublic,
    summary="Relay the owner's (or agent's) signed disputeAsset transaction",
    responses=_ACTION_ERRORS,
)
async def dispute(
    asset_id: AssetId, body: AssetAction, member: CurrentMember, services: ServicesDep
) -> AssetPublic:
    view = await services.reads.asset(b32(asset_id))
    if not await may_act_for(services, view.owner, member.address):
        raise errors.NotOwnerError(f"{member.address} does not own asset {asset_id}")
    return await _relay_asset_action(services, member, asset_id, body, "disputeAsset", "dispute")


@router.post(
    "/{asset_id}/resolution",
    response_model=AssetPublic,
    summary="Relay the issuer's signed resolveDispute transaction",
    responses=_ACTION_ERRORS,
)
async def resolve(
    asset_id: AssetId, body: AssetAction, member: Issuer, services: ServicesDep
) -> AssetPublic:
    view = await services.reads.asset(b32(asset_id))
    if view.issuer.lower() != member.address.lower():
        raise errors.NotIssuerError(f"asset {asset_id} was issued by {view.issuer}")
    return await _relay_asset_action(services, member, asset_id, body, "resolveDispute", "resolve")


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


@router.get(
    "",
    response_model=list[AssetPublic],
    summary="Assets the caller may see: a subject its own, an issuer those it issued, "
    "a regulator all",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.RoleRequiredError, errors.InvalidCursorError),
    },
)
async def list_assets(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[AssetPublic]:
    scope = listing_scope(
        member,
        [(Role.REGULATOR, None), (Role.ISSUER, "issuer"), (Role.SUBJECT, "owner")],
        "institutions see data only through grants (/v1/access)",
    )
    after = _paging.decode_cursor("assets", cursor, (int, str))
    rows = await to_thread.run_sync(
        lambda: _store.list_assets(services.engine, **scope, after=after, limit=limit + 1)
    )
    rows = _paging.page(
        request, response, "assets", rows, limit, lambda r: (r["anchor_block"], r["asset_id"])
    )
    # One chain read per row of this page (at most ``limit``), never per row of the table.
    return [_public(r, await services.reads.asset(b32(r["asset_id"]))) for r in rows]


@router.get(
    "/{asset_id}",
    response_model=AssetPublic,
    summary="One asset's metadata and on-chain status (owner/agent, issuer, regulator)",
    responses=errors.problem_responses(errors.AssetNotFoundError, errors.ForbiddenError),
)
async def get_asset(asset_id: AssetId, member: CurrentMember, services: ServicesDep) -> AssetPublic:
    row = await _visible_asset(services, member, asset_id)
    return _public(row, await services.reads.asset(b32(asset_id)))


@router.get(
    "/{asset_id}/sealed",
    response_model=AssetSealed,
    summary="The sealed asset, to open locally (owner or its agent only)",
    responses=errors.problem_responses(errors.AssetNotFoundError, errors.NotOwnerError),
)
async def get_sealed(
    asset_id: AssetId, member: CurrentMember, services: ServicesDep
) -> AssetSealed:
    row = await _visible_asset(services, member, asset_id)
    if not await may_act_for(services, row["owner"], member.address):
        raise errors.NotOwnerError(f"only the owner of {asset_id} may fetch the sealed asset")
    sealed = await to_thread.run_sync(services.vault.get_sealed, asset_id)
    if sealed is None:
        raise errors.AssetNotFoundError(f"the ciphertext of {asset_id} is gone")
    public = _public(row, await services.reads.asset(b32(asset_id)))
    return AssetSealed(**public.model_dump(), sealed=base64.b64encode(sealed).decode())
