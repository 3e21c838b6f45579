"""Recall and deletion acknowledgements: an institution's signed acknowledgement, checked
against the chain and relayed (ILifecycle.acknowledgeBatch); and what it still owes.

Every refusal the contract would make is made here first, from the chain, with a typed
error: nothing is relayed for a live grant, someone else's grant, or a repeat. The list of
what is owed comes from the event index (``ledger.owed``), scoped like the access log: an
institution sees its own, a subject the grants of its assets, a regulator all.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from fastapi import Request, Response
from pydantic import BaseModel, Field

from api import _paging, errors
from api.auth import Member, Role
from api.envelope import EnvelopeError, recover
from api.flows._shared import b32, existing_grant, listing_scope
from api.models import AcknowledgementCreate
from api.services import Services
from ledger import eip712, owed
from ledger.abi import ledger_abi
from ledger.lifecycle import (
    Acknowledgement,
    SignedAcknowledgement,
    ack_digest,
    has_ended,
    pack_ack_batch,
    recall_owed,
)
from ledger.models import AckKind, AssetStatus, Reason

_ABI = ledger_abi()
_TOPICS = {spec.name: "0x" + topic.hex() for topic, spec in _ABI.events.items()}
_RECORDED = {
    AckKind.RECALL: _TOPICS["RecallAcknowledged"],
    AckKind.DELETION: _TOPICS["DeletionAcknowledged"],
}
OWED = _paging.Keyset("owed", (("grant_id", str),))


class AcknowledgementPublic(BaseModel):
    grant_id: str
    kind: Literal["recall", "deletion"]
    uses: int
    at: int = Field(description="When the institution was told (recall) or deleted (deletion)")
    tx_hash: str
    block: int


class OwedPublic(BaseModel):
    """A grant's lifecycle duties (times are unix seconds; null: not owed or not yet)."""

    grant_id: str
    institution: str
    subject: str
    asset_id: str
    uses: int
    retention: int
    recalled_at: int | None = Field(description="Its version was superseded: recall owed")
    recall_acknowledged_at: int | None
    ended_at: int | None
    deletion_due: int | None = Field(description="ended_at + retention")
    deletion_acknowledged_at: int | None
    recall_age: int | None = Field(description="Seconds an unacknowledged recall has waited")
    deletion_overdue: bool | None = Field(description="Due and not acknowledged")


async def acknowledge(
    services: Services, member: Member, body: AcknowledgementCreate
) -> AcknowledgementPublic:
    kind = AckKind[body.kind.upper()]
    ack = Acknowledgement(kind, b32(body.grant_id), body.uses, body.at)
    signature = b32(body.signature)
    domain = eip712.ledger_domain(services.deployment.chain_id, services.deployment.ledger_address)
    try:
        signed_by = recover(ack_digest(domain, ack), signature)
    except EnvelopeError as exc:
        raise errors.BadSignatureError(f"acknowledgement signature: {exc}") from exc
    if signed_by.lower() != member.address.lower():
        raise errors.BadSignatureError("the acknowledgement must be signed by the caller")
    await _check_owed(services, member, ack)
    data = _ABI.fn("acknowledgeBatch").encode(
        pack_ack_batch([SignedAcknowledgement(ack, signature)])
    )
    receipt = await services.relay_custodian(
        key=f"ack:{body.kind}:{body.grant_id.lower()}",
        kind="acknowledge",
        payload={"grant_id": body.grant_id.lower(), "kind": body.kind},
        data=data,
        on_confirmed=lambda _tx, _block: None,
    )
    topics = {str(t).lower() for lg in receipt.logs for t in lg.get("topics", [])[:1]}
    if _RECORDED[kind] not in topics:
        # Raced (e.g. acknowledged meanwhile through another service): the chain refused it.
        raise errors.ContractRejectedError("the ledger refused the acknowledgement")
    return AcknowledgementPublic(
        grant_id=body.grant_id.lower(),
        kind=body.kind,
        uses=body.uses,
        at=body.at,
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
    )


async def _check_owed(services: Services, member: Member, ack: Acknowledgement) -> None:
    """The contract's refusals, in its order, from the chain at the latest block."""
    view = await existing_grant(services, "0x" + ack.grant_id.hex())
    grant = view.grant
    if grant.grantee.lower() != member.address.lower():
        raise errors.NotGranteeError(f"the grant was made to {grant.grantee}, not to the caller")
    if grant.acknowledged(ack.kind):
        raise errors.AlreadyAcknowledgedError(f"{ack.kind.name.lower()} already acknowledged")
    record = await services.chain.record_time()
    if ack.kind is AckKind.RECALL:
        asset = await services.reads.asset(grant.asset_id)
        if not recall_owed(grant.uses, asset.status == AssetStatus.SUPERSEDED):
            raise errors.NotRecalledError(Reason.NOT_RECALLED.text)
    elif not has_ended(grant.status, grant.expiry, grant.uses, grant.max_uses, record.at):
        raise errors.GrantLiveError(Reason.GRANT_LIVE.text)
    if ack.uses != grant.uses:
        raise errors.UsesMismatchError(f"the chain records {grant.uses} use(s), not {ack.uses}")
    if ack.at > record.at:
        raise errors.AcknowledgementInFutureError(f"dated {ack.at}, chain time {record.at}")


async def list_owed(
    services: Services,
    member: Member,
    request: Request,
    response: Response,
    *,
    outstanding: bool,
    institution: str | None,
    limit: int,
    cursor: str | None,
) -> list[OwedPublic]:
    scope = listing_scope(
        member,
        [(Role.REGULATOR, None), (Role.CONSUMER, "institution"), (Role.SUBJECT, "subject")],
        "only institutions, subjects and regulators have acknowledgements",
    )
    if not scope and institution is not None:  # a regulator narrows to one institution
        scope = {"institution": institution}
    now = (await services.chain.record_time()).at

    def rows_after(key: Any, n: int) -> list[dict[str, Any]]:
        with services.engine.connect() as conn:
            got = owed.page(
                conn,
                now=now,
                outstanding=outstanding,
                after=None if key is None else str(key[0]),
                limit=n,
                **scope,
            )
        return [vars(o) | o.outstanding(now) for o in got]

    try:
        rows = await _paging.fetch(request, response, OWED, cursor, limit, rows_after)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        raise errors.NotReadyError(
            "the lifecycle index is not built (indexer not running)"
        ) from exc
    return [OwedPublic(**{k: r.get(k) for k in OwedPublic.model_fields}) for r in rows]
