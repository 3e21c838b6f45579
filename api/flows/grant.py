"""Grant: a subject's signed consent is checked, its key package bound to it, then relayed.

What the contract would revert on is refused before anything is stored or relayed; the key
package is stored only once the grant is confirmed on chain.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread

from api import _store, errors, prechecks
from api.auth import Member
from api.envelope import EnvelopeError, recover
from api.flows._shared import b32, fields_for_asset, held_asset, may_act_for
from api.models import ConsentReceipt, GrantCreate, GrantTerms
from api.services import Services
from api.terms import describe_terms, field_names
from ledger import eip712
from ledger import models as ledger_models
from ledger.abi import ledger_abi
from ledger.calls import grant_id_of

_ABI = ledger_abi()


async def grant(services: Services, member: Member, body: GrantCreate) -> ConsentReceipt:
    """Relay the grant and store its key package; the consent receipt once it is mined."""
    t = body.terms
    asset_row = await _asset_the_caller_may_grant(services, member, body)
    terms = ledger_models.GrantTerms(
        b32(t.asset_id),
        t.grantee,
        t.purpose,
        t.fields_mask,
        t.not_before,
        t.expiry,
        t.max_uses,
        t.retention,
    )
    _check_grant_signature(services, body, terms)
    grant_id = "0x" + grant_id_of(body.grantor, int(body.nonce)).hex()
    package = services.vault.decode_b64(body.key_package, "key_package")
    await check_terms_and_package(services, t, body.deadline, terms, asset_row, grant_id, package)
    tx_hash, block = await _relay(services, body, terms, asset_row, grant_id, package)
    fields = await fields_for_asset(services, asset_row)
    return ConsentReceipt(
        grant_id=grant_id,
        action="grant",
        terms=t,
        terms_text=describe_terms(t, fields, asset_row),
        grantor=body.grantor,
        owner=asset_row["owner"],
        nonce=body.nonce,
        deadline=body.deadline,
        signature=body.signature,
        tx_hash=tx_hash,
        block=block,
        status="active",
    )


async def _asset_the_caller_may_grant(
    services: Services, member: Member, body: GrantCreate
) -> dict[str, Any]:
    # The grantee may submit too: a counter code hands it the grantor's signed grant.
    if member.address.lower() not in (body.grantor.lower(), body.terms.grantee.lower()):
        raise errors.NotOwnerError(
            "the grant must be submitted by its grantor (or by its grantee, redeeming a code)"
        )
    asset_id = body.terms.asset_id
    asset_row = await held_asset(services, asset_id)
    if not await may_act_for(services, asset_row["owner"], body.grantor):
        raise errors.NotOwnerError(
            f"{body.grantor} is neither the owner of {asset_id} nor its agent"
        )
    return asset_row


def _check_grant_signature(
    services: Services, body: GrantCreate, terms: ledger_models.GrantTerms
) -> None:
    domain = eip712.ledger_domain(services.deployment.chain_id, services.deployment.ledger_address)
    digest = eip712.grant_digest(domain, terms, int(body.nonce), body.deadline)
    try:
        signed_by = recover(digest, b32(body.signature))
    except EnvelopeError as exc:
        raise errors.BadSignatureError(f"grant signature: {exc}") from exc
    if signed_by.lower() != body.grantor.lower():
        raise errors.BadSignatureError(f"the grant is signed by {signed_by}, not by {body.grantor}")


async def check_terms_and_package(
    services: Services,
    t: GrantTerms,
    deadline: int,
    terms: ledger_models.GrantTerms,
    asset_row: dict[str, Any],
    grant_id: str,
    package: bytes,
) -> None:
    """What the contract would refuse in the terms, and a key package not bound to this grant
    (also for an enterprise's proposal, :mod:`api.flows.proposals`)."""
    schema_fields = await fields_for_asset(services, asset_row) or []
    if t.fields_mask >> len(schema_fields):
        raise errors.InvalidRequestError(
            f"fields_mask {t.fields_mask:#b} names fields beyond the schema's "
            f"{len(schema_fields)} fields"
        )
    # What the contract would revert on is refused before anything is stored or relayed.
    grantee = await prechecks.admit_grant(services, terms, deadline)
    # The package must open only for this grant; the service checks the binding, not the keys.
    await to_thread.run_sync(
        lambda: services.vault.check_key_package(
            package,
            grant_id=b32(grant_id),
            asset_id=b32(t.asset_id),
            version=int(asset_row["version"]),
            root=b32(asset_row["root"]),
            fields=field_names(t.fields_mask, schema_fields),
            grantee_key_digest=grantee.enc_key_hash,
        )
    )


async def _relay(
    services: Services,
    body: GrantCreate,
    terms: ledger_models.GrantTerms,
    asset_row: dict[str, Any],
    grant_id: str,
    package: bytes,
) -> tuple[str, int]:
    """The grant relayed by the custodian; its transaction hash and block once mined."""
    t = body.terms
    signed = ledger_models.SignedGrant(
        terms, body.grantor, int(body.nonce), body.deadline, b32(body.signature)
    )
    data = _ABI.fn("grantBySig").encode(signed.as_tuple())
    row: dict[str, Any] = {
        "grant_id": grant_id,
        "asset_id": t.asset_id.lower(),
        "owner": asset_row["owner"],
        "grantor": body.grantor.lower(),
        "grantee": t.grantee.lower(),
        "terms": t.model_dump(),
        "nonce": body.nonce,
        "deadline": body.deadline,
        "signature": body.signature.lower(),
    }

    def store(receipt_tx: str, block: int) -> None:
        services.vault.put_key_package(grant_id, package)
        _store.put_grant(services.engine, row | {"tx_hash": receipt_tx, "block": block})

    receipt = await services.relay_custodian(
        key=f"grant:{grant_id}",
        kind="grant",
        payload={"row": row, "key_package": body.key_package},
        data=data,
        on_confirmed=store,
    )
    return receipt.tx_hash, receipt.block_number
