"""Consents: a subject's signed grant (plus its key package) relayed; revoke, pause, resume;
the grant views each party may see; ``verify`` for the grantee."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Path, Query, Request, Response, status

from api import _paging, _store, errors, prechecks
from api.auth import Member, MemberStatus, Role
from api.chain import GrantView
from api.deps import Consumer, CurrentMember, MemberAnyStatus, ServicesDep
from api.envelope import EnvelopeError, recover
from api.models import (
    ConsentReceipt,
    GrantAction,
    GrantCreate,
    GrantPublic,
    GrantTerms,
    Verdict,
)
from api.routers._shared import b32 as _b32
from api.routers._shared import listing_scope
from api.routers._shared import may_act_for as _may_act_for
from api.services import Services
from api.terms import describe_terms, field_names
from ledger import eip712
from ledger import models as ledger_models
from ledger.abi import ledger_abi
from ledger.calls import grant_id_of

router = APIRouter(prefix="/grants", tags=["grants"])

GrantId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="bytes32 grant id")]

_ABI = ledger_abi()
#: action -> (the ledger function relaying the subject's signed message, status after it)
_ACTIONS = {
    "revoke": ("revokeBySig", "revoked"),
    "pause": ("pauseBySig", "paused"),
    "resume": ("resumeBySig", "active"),
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentReceipt,
    summary="Relay a subject's signed grant and store its key package; returns the consent receipt",
    responses=errors.problem_responses(
        errors.InvalidRequestError,
        errors.InvalidVaultDataError,
        errors.KeyPackageMismatchError,
        errors.AssetNotFoundError,
        errors.AssetNotActiveError,
        errors.NotOwnerError,
        errors.GrantExpiryPastError,
        errors.GrantWindowInvalidError,
        errors.GrantGranteeNotMemberError,
        errors.GrantGranteeNotConsumerError,
        errors.GrantGranteeSuspendedError,
        errors.RequestSignatureExpiredError,
        errors.ContractRejectedError,
        errors.RelayFailedError,
        errors.ConflictError,
    ),
)
async def create_grant(
    body: GrantCreate, member: CurrentMember, services: ServicesDep
) -> ConsentReceipt:
    t = body.terms
    # The grantee may submit too: a counter code hands it the grantor's signed grant.
    if member.address.lower() not in (body.grantor.lower(), t.grantee.lower()):
        raise errors.NotOwnerError(
            "the grant must be submitted by its grantor (or by its grantee, redeeming a code)"
        )
    nonce = int(body.nonce)
    asset_row = await to_thread.run_sync(_store.get_asset, services.engine, t.asset_id)
    if asset_row is None:
        raise errors.AssetNotFoundError(f"asset {t.asset_id} is not held by this vault")
    if not await _may_act_for(services, asset_row["owner"], body.grantor):
        raise errors.NotOwnerError(
            f"{body.grantor} is neither the owner of {t.asset_id} nor its agent"
        )
    terms = ledger_models.GrantTerms(
        _b32(t.asset_id),
        t.grantee,
        t.purpose,
        t.fields_mask,
        t.not_before,
        t.expiry,
        t.max_uses,
    )
    domain = eip712.ledger_domain(services.deployment.chain_id, services.deployment.ledger_address)
    digest = eip712.grant_digest(domain, terms, nonce, body.deadline)
    try:
        signed_by = recover(digest, _b32(body.signature))
    except EnvelopeError as exc:
        raise errors.BadSignatureError(f"grant signature: {exc}") from exc
    if signed_by.lower() != body.grantor.lower():
        raise errors.BadSignatureError(f"the grant is signed by {signed_by}, not by {body.grantor}")
    grant_id = "0x" + grant_id_of(body.grantor, nonce).hex()
    package = services.vault.decode_b64(body.key_package, "key_package")
    schema_fields = await _fields_for_asset(services, asset_row) or []
    if t.fields_mask >> len(schema_fields):
        raise errors.InvalidRequestError(
            f"fields_mask {t.fields_mask:#b} names fields beyond the schema's "
            f"{len(schema_fields)} fields"
        )
    # What the contract would revert on is refused before anything is stored or relayed.
    grantee = await prechecks.admit_grant(services, terms, body.deadline)
    # The package must open only for this grant; the service checks the binding, not the keys.
    await to_thread.run_sync(
        lambda: services.vault.check_key_package(
            package,
            grant_id=_b32(grant_id),
            asset_id=_b32(t.asset_id),
            version=int(asset_row["version"]),
            root=_b32(asset_row["root"]),
            fields=field_names(t.fields_mask, schema_fields),
            grantee_key_digest=grantee.enc_key_hash,
        )
    )

    signed = ledger_models.SignedGrant(
        terms, body.grantor, nonce, body.deadline, _b32(body.signature)
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
    fields = await _fields_for_asset(services, asset_row)
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
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
        status="active",
    )


async def _fields_for_asset(
    services: Services, asset_row: dict[str, Any] | None
) -> list[str] | None:
    if asset_row is None:
        return None
    schema = await to_thread.run_sync(_store.get_schema, services.engine, asset_row["schema_id"])
    return list(schema["fields"]) if schema else None


_STATUS_KINDS: dict[str, eip712.StatusKind] = {
    "revoke": "RevokeConsent",
    "pause": "PauseConsent",
    "resume": "ResumeConsent",
}


async def _check_status_signature(
    action: str, grant_id: str, body: GrantAction, services: Services
) -> None:
    """The signed message recovers to its signer, in the documented form only (v 27/28, low
    s), before anything is relayed: a bent signature costs no transaction and no relay row."""
    nonce = await services.reads.consent_nonce(body.signer)
    domain = eip712.ledger_domain(services.deployment.chain_id, services.deployment.ledger_address)
    digest = eip712.status_digest(
        domain, _STATUS_KINDS[action], _b32(grant_id), nonce, body.deadline
    )
    try:
        signed_by = recover(digest, _b32(body.signature))
    except EnvelopeError as exc:
        raise errors.BadSignatureError(f"{_STATUS_KINDS[action]} signature: {exc}") from exc
    if signed_by.lower() != body.signer.lower():
        raise errors.BadSignatureError(
            f"the {_STATUS_KINDS[action]} message is not signed by {body.signer} "
            "(or not with its current consent nonce)"
        )


async def _grant_action(
    action: str, grant_id: str, body: GrantAction, member: Member, services: Services
) -> ConsentReceipt:
    if body.signer.lower() != member.address.lower():
        raise errors.NotOwnerError(
            "the message must be signed by the caller (signer = request signer)"
        )
    view = await services.reads.grant(_b32(grant_id))
    if not view.exists:
        raise errors.GrantNotFoundError(f"no grant {grant_id}")
    asset = await services.reads.asset(view.grant.asset_id)
    if not await _may_act_for(services, asset.owner, member.address):
        raise errors.NotOwnerError(
            f"{member.address} is neither the owner of this grant's asset nor its agent"
        )
    await _check_status_signature(action, grant_id, body, services)
    fn, new_status = _ACTIONS[action]
    data = _ABI.fn(fn).encode(_b32(grant_id), body.signer, body.deadline, _b32(body.signature))

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
    terms = _terms_of(view)
    return ConsentReceipt(
        grant_id=grant_id,
        action=action,
        terms=terms,
        terms_text=describe_terms(terms, await _fields_for_asset(services, asset_row), asset_row),
        grantor=body.signer,
        owner=asset.owner,
        nonce=row["nonce"] if row else None,
        deadline=body.deadline,
        signature=body.signature,
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
        status=new_status,
    )


def _terms_of(view: GrantView) -> GrantTerms:
    return GrantTerms(
        asset_id="0x" + view.grant.asset_id.hex(),
        grantee=view.grant.grantee,
        purpose=view.grant.purpose,
        fields_mask=view.grant.fields_mask,
        not_before=view.grant.not_before,
        expiry=view.grant.expiry,
        max_uses=view.grant.max_uses,
    )


_ACTION_ERRORS = errors.problem_responses(
    errors.GrantNotFoundError,
    errors.NotOwnerError,
    errors.ContractRejectedError,
    errors.RelayFailedError,
)
_RESUME_ERRORS = errors.problem_responses(
    errors.GrantNotFoundError,
    errors.NotOwnerError,
    errors.MemberSuspendedError,
    errors.ContractRejectedError,
    errors.RelayFailedError,
)


@router.post(
    "/{grant_id}/revoke",
    response_model=ConsentReceipt,
    responses=_ACTION_ERRORS,
    summary="Relay a signed revocation; the key package is deleted (a suspended owner may revoke)",
)
async def revoke_grant(
    grant_id: GrantId, body: GrantAction, member: MemberAnyStatus, services: ServicesDep
) -> ConsentReceipt:
    return await _grant_action("revoke", grant_id, body, member, services)


@router.post(
    "/{grant_id}/pause",
    response_model=ConsentReceipt,
    responses=_ACTION_ERRORS,
    summary="Relay a signed pause (a suspended owner may pause)",
)
async def pause_grant(
    grant_id: GrantId, body: GrantAction, member: MemberAnyStatus, services: ServicesDep
) -> ConsentReceipt:
    return await _grant_action("pause", grant_id, body, member, services)


@router.post(
    "/{grant_id}/resume",
    response_model=ConsentReceipt,
    responses=_RESUME_ERRORS,
    summary="Relay a signed resumption (an active owner or live agent)",
)
async def resume_grant(
    grant_id: GrantId, body: GrantAction, member: CurrentMember, services: ServicesDep
) -> ConsentReceipt:
    return await _grant_action("resume", grant_id, body, member, services)


async def _public(services: Services, view: GrantView, row: dict[str, Any] | None) -> GrantPublic:
    asset_row = await to_thread.run_sync(
        _store.get_asset, services.engine, "0x" + view.grant.asset_id.hex()
    )
    fields = await _fields_for_asset(services, asset_row)
    terms = _terms_of(view)
    owner = (
        asset_row["owner"] if asset_row else (await services.reads.asset(view.grant.asset_id)).owner
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
        uses=view.grant.uses,
        status=view.status,
        block=view.block,
    )


async def _visible(services: Services, member: Member, view: GrantView, owner: str) -> bool:
    if member.has(Role.REGULATOR):
        return True
    if view.grant.grantee.lower() == member.address.lower():
        return True
    return await _may_act_for(services, owner, member.address)


@router.get(
    "",
    response_model=list[GrantPublic],
    summary="Grants the caller may see: a subject its own, an institution those made to it, "
    "a regulator all",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(
            errors.RoleRequiredError, errors.InvalidCursorError, errors.MemberSuspendedError
        ),
    },
)
async def list_grants(
    request: Request,
    response: Response,
    member: MemberAnyStatus,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
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
    after = _paging.decode_cursor("grants", cursor, (int, str))
    rows = await to_thread.run_sync(
        lambda: _store.list_grants(services.engine, **scope, after=after, limit=limit + 1)
    )
    rows = _paging.page(
        request, response, "grants", rows, limit, lambda r: (r["block"], r["grant_id"])
    )
    # Chain reads per row of this page (at most ``limit``), never per row of the table.
    out = []
    for row in rows:
        view = await services.reads.grant(_b32(row["grant_id"]))
        out.append(await _public(services, view, row))
    return out


@router.get(
    "/{grant_id}",
    response_model=GrantPublic,
    summary="One grant, as the chain has it now (owner/agent, grantee or regulator)",
    responses=errors.problem_responses(
        errors.GrantNotFoundError, errors.ForbiddenError, errors.MemberSuspendedError
    ),
)
async def get_grant(
    grant_id: GrantId, member: MemberAnyStatus, services: ServicesDep
) -> GrantPublic:
    view = await services.reads.grant(_b32(grant_id))
    if not view.exists:
        raise errors.GrantNotFoundError(f"no grant {grant_id}")
    owner = (await services.reads.asset(view.grant.asset_id)).owner
    if member.status == MemberStatus.SUSPENDED:
        # A suspended member sees only what it may still withdraw: its own grants.
        if not await _may_act_for(services, owner, member.address):
            raise errors.MemberSuspendedError(f"{member.address} is suspended")
    elif not await _visible(services, member, view, owner):
        raise errors.ForbiddenError(f"{member.address} is not a party to grant {grant_id}")
    row = await to_thread.run_sync(_store.get_grant, services.engine, grant_id)
    return await _public(services, view, row)


@router.get(
    "/{grant_id}/verify",
    response_model=Verdict,
    summary="May the calling institution read these fields under this grant now? "
    "(the chain's check on the latest state, at the time an access would be recorded)",
    responses=errors.problem_responses(
        errors.RoleRequiredError, errors.GrantNotFoundError, errors.NotGranteeError
    ),
)
async def verify_grant(
    grant_id: GrantId,
    member: Consumer,
    services: ServicesDep,
    fields_mask: Annotated[int, Query(ge=1, le=2**64 - 1, description="bit i = field i")],
) -> Verdict:
    verdict = await prechecks.access_verdict(services, _b32(grant_id), member.address, fields_mask)
    if verdict.reason in (1, 2):
        raise errors.refusal(verdict.reason, block=verdict.block)
    slug, words = errors.reason_problem(verdict.reason)
    return Verdict(
        grant_id=grant_id,
        grantee=member.address,
        fields_mask=fields_mask,
        allowed=verdict.allowed,
        reason_code=verdict.reason,
        code=slug,
        reason=words,
        block=verdict.block,
        at=verdict.at,
    )
