"""Issue: an issuer's sealed asset, checked against its signed anchor, stored and relayed.

The sealed bytes are parsed and checked against the anchor transaction (digest, root, fields
= schema, wrapped to the owner's current key) before anything is stored or relayed; the
ciphertext is removed again if the anchor fails. A new version is the same flow, relaying
``supersedeAsset``.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread

from api import _store, errors
from api._rawtx import RawTx
from api.auth import Member
from api.flows._shared import b32, held_asset, hex32, ledger_call
from api.flows.assets import public
from api.models import AssetCreate, AssetPublic, AssetVersionCreate
from api.services import Services
from ledger.abi import ledger_abi
from ledger.address import to_checksum_address

_ABI = ledger_abi()


async def issue(services: Services, member: Member, body: AssetCreate) -> AssetPublic:
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


async def new_version(
    services: Services, member: Member, asset_id: str, body: AssetVersionCreate
) -> AssetPublic:
    old = await held_asset(services, asset_id)
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
    return public(stored, await services.reads.asset(b32(asset_id)))
