"""Revoke, pause, resume: a subject's (or its agent's) signed status change, relayed.

A revocation deletes the grant's key package once it is mined (crypto-shredding).
"""

from __future__ import annotations

from typing import Literal

from anyio import to_thread

from api import _store, errors
from api.auth import Member
from api.envelope import EnvelopeError, recover
from api.flows._shared import b32, existing_grant, fields_for_asset, may_act_for, terms_of
from api.models import ConsentReceipt, GrantAction
from api.services import Services
from api.terms import describe_terms
from ledger import eip712
from ledger.abi import ledger_abi

Action = Literal["revoke", "pause", "resume"]

_ABI = ledger_abi()
#: action -> (the ledger function relaying the subject's signed message, status after it)
_ACTIONS = {
    "revoke": ("revokeBySig", "revoked"),
    "pause": ("pauseBySig", "paused"),
    "resume": ("resumeBySig", "active"),
}
_STATUS_KINDS: dict[str, eip712.StatusKind] = {
    "revoke": "RevokeConsent",
    "pause": "PauseConsent",
    "resume": "ResumeConsent",
}


async def revoke(
    services: Services, member: Member, grant_id: str, body: GrantAction
) -> ConsentReceipt:
    return await change_status("revoke", services, member, grant_id, body)


async def pause(
    services: Services, member: Member, grant_id: str, body: GrantAction
) -> ConsentReceipt:
    return await change_status("pause", services, member, grant_id, body)


async def resume(
    services: Services, member: Member, grant_id: str, body: GrantAction
) -> ConsentReceipt:
    return await change_status("resume", services, member, grant_id, body)


async def change_status(
    action: Action, services: Services, member: Member, grant_id: str, body: GrantAction
) -> ConsentReceipt:
    if body.signer.lower() != member.address.lower():
        raise errors.NotOwnerError(
            "the message must be signed by the caller (signer = request signer)"
        )
    view = await existing_grant(services, grant_id)
    asset = await services.reads.asset(view.grant.asset_id)
    if not await may_act_for(services, asset.owner, member.address):
        raise errors.NotOwnerError(
            f"{member.address} is neither the owner of this grant's asset nor its agent"
        )
    await _check_status_signature(action, grant_id, body, services)
    fn, new_status = _ACTIONS[action]
    data = _ABI.fn(fn).encode(b32(grant_id), body.signer, body.deadline, b32(body.signature))

    def on_confirmed(_tx: str, _block: int) -> None:
        if action == "revoke":
            services.vault.delete_key_package(grant_id)

    receipt = await services.relay_custodian(
        key=f"{action}:{grant_id}",
        kind=action,
        payload={"grant_id": grant_id},
        data=data,
        on_confirmed=on_confirmed,
    )
    row = await to_thread.run_sync(_store.get_grant, services.engine, grant_id)
    asset_row = await to_thread.run_sync(
        _store.get_asset, services.engine, "0x" + view.grant.asset_id.hex()
    )
    terms = terms_of(view)
    return ConsentReceipt(
        grant_id=grant_id,
        action=action,
        terms=terms,
        terms_text=describe_terms(terms, await fields_for_asset(services, asset_row), asset_row),
        grantor=body.signer,
        owner=asset.owner,
        nonce=row["nonce"] if row else None,
        deadline=body.deadline,
        signature=body.signature,
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
        status=new_status,
    )


async def _check_status_signature(
    action: str, grant_id: str, body: GrantAction, services: Services
) -> None:
    """The signed message recovers to its signer, in the documented form only (v 27/28, low
    s), before anything is relayed: a bent signature costs no transaction and no relay row."""
    nonce = await services.reads.consent_nonce(body.signer)
    domain = eip712.ledger_domain(services.deployment.chain_id, services.deployment.ledger_address)
    digest = eip712.status_digest(
        domain, _STATUS_KINDS[action], b32(grant_id), nonce, body.deadline
    )
    try:
        signed_by = recover(digest, b32(body.signature))
    except EnvelopeError as exc:
        raise errors.BadSignatureError(f"{_STATUS_KINDS[action]} signature: {exc}") from exc
    if signed_by.lower() != body.signer.lower():
        raise errors.BadSignatureError(
            f"the {_STATUS_KINDS[action]} message is not signed by {body.signer} "
            "(or not with its current consent nonce)"
        )
