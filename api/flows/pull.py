"""Pull: the grantee's signed access request is recorded on-chain, then the data is served.

Order matters and is the point of the service: refuse what the chain would refuse
(:mod:`api.prechecks`, judged at the time the record would be made), prepare the
answer, record the access (batched with concurrent pulls), and only when this
request's ``Accessed`` event is confirmed return ciphertexts, key package, proofs
and anchor. No record, no data.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread

from api import _store, errors, prechecks
from api.auth import Member
from api.batcher import AccessRequest
from api.envelope import checksum
from api.models import AccessCreate, AccessPublic, Anchor, TxRef
from api.services import Services
from api.terms import field_names
from vault.packages import Anchor as VaultAnchor


async def pull(services: Services, member: Member, body: AccessCreate) -> AccessPublic:
    request = AccessRequest(
        grant_id=bytes.fromhex(body.grant_id[2:]),
        fields_mask=body.fields_mask,
        nonce=int(body.nonce),
        deadline=body.deadline,
        signature=bytes.fromhex(body.signature[2:]),
        grantee=member.address,
    )
    # Announced from here: a batch being gathered under load waits briefly for this pull.
    with services.batcher.expecting() as record_access:
        # Everything the chain would refuse is refused here, before any preparation or gas.
        admitted = await prechecks.admit_pull(services, request)
        try:
            view = admitted.view
            asset_hex = "0x" + view.grant.asset_id.hex()
            asset_row, fields, disclosure = await to_thread.run_sync(
                _prepare, services, body.grant_id, asset_hex, view.grant.fields_mask
            )
            record = await record_access(request)
        finally:
            admitted.reservation.release()
    return AccessPublic(
        grant_id=body.grant_id,
        fields_mask=body.fields_mask,
        fields=field_names(body.fields_mask, fields) if fields else None,
        disclosure=disclosure,
        anchor=Anchor(
            asset_id=asset_hex,
            root=asset_row["root"],
            issuer=checksum(asset_row["issuer"].lower()),
            version=asset_row["version"],
            schema_id=asset_row["schema_id"],
            ciphertext_digest=asset_row["ciphertext_digest"],
            block=asset_row["anchor_block"],
            tx_hash=asset_row["anchor_tx"],
        ),
        access=TxRef(tx_hash=record.tx_hash, block=record.block_number),
        use=record.use,
    )


def _prepare(
    services: Services, grant_id: str, asset_hex: str, grant_mask: int
) -> tuple[dict[str, Any], list[str] | None, str]:
    """Everything a pull answers with, read in one worker-thread hop, before any record.

    The anchor comes from the asset row, written only once the anchor transaction carrying
    exactly this root was confirmed (an asset id's root and issuer never change on chain;
    status changes are the chain's ``check``). The grantee re-reads it from the chain anyway.
    The asset row, the key package, the blob digest and the schema's fields are one
    statement (:func:`api._store.get_pull_rows`), read afresh on every pull.
    """
    rows = _store.get_pull_rows(services.engine, grant_id, asset_hex)
    if rows is None:
        raise errors.AssetNotFoundError(f"asset {asset_hex} is not held by this vault")
    package = rows.pop("package")
    if package is None:
        raise errors.KeyPackageMissingError(f"no key package for grant {grant_id}")
    blob, fields = rows.pop("blob"), rows.pop("schema_fields")
    if blob is None:
        raise errors.AssetNotFoundError(f"the ciphertext of {asset_hex} is gone")
    anchor = VaultAnchor(
        root=bytes.fromhex(rows["root"][2:]),
        issuer=bytes.fromhex(rows["issuer"][2:]),
        block_number=int(rows["anchor_block"]),
    )
    disclosure = services.vault.disclose(
        asset_hex, bytes(package), grant_mask=grant_mask, anchor=anchor, blob=str(blob)
    )
    return rows, list(fields) if fields is not None else None, disclosure
