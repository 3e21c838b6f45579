"""Grant proposals of an enterprise with an M-of-N policy (issue 18).

A live agent proposes a grant with its own ``GrantApproval`` signature and the key package;
other live agents approve it. Once the approvals that count now (signed in the enterprise's
current epoch, each by a live agent, as the contract judges them) reach the policy's number,
the custodian relays ``grantWithApprovals``. The service only keeps signatures: it cannot
make one, and a client recovers each one itself (``ledger.approvals``) before believing who
approved.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from anyio import to_thread
from fastapi import Request, Response

from api import _paging, _proposals, _store, errors
from api.auth import Member, MemberStatus
from api.envelope import EnvelopeError, recover
from api.flows._shared import b32, fields_for_asset, held_asset, may_act_for
from api.flows.grant import check_terms_and_package
from api.models import ApprovalCreate, ApprovalPublic, GrantTerms, ProposalCreate, ProposalPublic
from api.services import Services
from api.terms import describe_terms
from ledger import eip712
from ledger import models as ledger_models
from ledger.abi import ledger_abi
from ledger.calls import grant_id_of

_ABI = ledger_abi()


def _chain_terms(t: GrantTerms) -> ledger_models.GrantTerms:
    return ledger_models.GrantTerms.from_json(t.model_dump())


async def _live_agent(services: Services, enterprise: str, who: str) -> None:
    if who.lower() == enterprise.lower() or not await may_act_for(services, enterprise, who):
        raise errors.NotAgentError(f"{who} is not a live agent of {enterprise}")


async def _digest(services: Services, row: dict[str, Any]) -> tuple[bytes, int, int]:
    """The approval digest in the enterprise's current epoch, the number needed, the epoch."""
    terms = _chain_terms(GrantTerms(**row["terms"]))
    needed, epoch = await services.reads.approval_policy(row["enterprise"], terms.purpose)
    domain = eip712.ledger_domain(services.deployment.chain_id, services.deployment.ledger_address)
    digest = eip712.approval_digest(
        domain, row["enterprise"], epoch, terms, int(row["nonce"]), int(row["deadline"])
    )
    return digest, needed, epoch


def _signed_by(digest: bytes, signature: str) -> str:
    try:
        return recover(digest, b32(signature)).lower()
    except EnvelopeError as exc:
        raise errors.ApprovalSignatureInvalidError(f"approval signature: {exc}") from exc


async def propose(services: Services, member: Member, body: ProposalCreate) -> ProposalPublic:
    """Store a live agent's proposal with its approval; relay at once if that is enough."""
    t = body.terms
    asset_row = await held_asset(services, t.asset_id)
    enterprise = asset_row["owner"].lower()
    await _live_agent(services, enterprise, member.address)
    grant_id = "0x" + grant_id_of(enterprise, int(body.nonce)).hex()
    if (await services.reads.grant(b32(grant_id))).exists:
        raise errors.ConflictError(f"grant {grant_id} exists already")
    package = services.vault.decode_b64(body.key_package, "key_package")
    terms = _chain_terms(t)
    await check_terms_and_package(services, t, body.deadline, terms, asset_row, grant_id, package)
    row: dict[str, Any] = {
        "proposal_id": grant_id,
        "enterprise": enterprise,
        "asset_id": t.asset_id.lower(),
        "proposer": member.address.lower(),
        "terms": t.model_dump(),
        "nonce": body.nonce,
        "deadline": body.deadline,
        "key_package": package,
        "status": "pending",
        "tx_hash": None,
    }
    digest, _, _ = await _digest(services, row)
    if _signed_by(digest, body.approval) != member.address.lower():
        raise errors.ApprovalSignatureInvalidError(
            "the approval is not the proposer's signature of these terms in the current epoch"
        )
    stored = await to_thread.run_sync(
        _proposals.put_proposal, services.engine, row, member.address.lower(), body.approval.lower()
    )
    if not stored:
        raise errors.ConflictError(f"proposal {grant_id} exists already")
    return await _settle(services, grant_id)


async def approve(
    services: Services, member: Member, proposal_id: str, body: ApprovalCreate
) -> ProposalPublic:
    """Add a live agent's approval; relay the grant once the approvals that count suffice."""
    row = await _proposal(services, proposal_id)
    await _live_agent(services, row["enterprise"], member.address)
    if row["status"] != "pending" or row["deadline"] < int(time.time()):
        raise errors.ProposalClosedError(f"proposal {proposal_id} is {_status(row)}")
    digest, _, _ = await _digest(services, row)
    if _signed_by(digest, body.signature) != member.address.lower():
        raise errors.ApprovalSignatureInvalidError(
            "the approval is not the caller's signature of these terms in the current epoch"
        )
    outcome = await to_thread.run_sync(
        _proposals.add_approval,
        services.engine,
        row["proposal_id"],
        member.address.lower(),
        body.signature.lower(),
    )
    if outcome == "duplicate":
        raise errors.ApprovalExistsError(f"{member.address} approved {proposal_id} already")
    if outcome == "full":
        raise errors.InvalidRequestError(
            f"a proposal holds at most {_proposals.MAX_APPROVALS} approvals"
        )
    return await _settle(services, row["proposal_id"])


async def get_proposal(services: Services, member: Member, proposal_id: str) -> ProposalPublic:
    row = await _proposal(services, proposal_id)
    await _may_see(services, member, row["enterprise"])
    return await _public(services, row, None)


async def list_proposals(
    services: Services,
    member: Member,
    request: Request,
    response: Response,
    *,
    enterprise: str,
    limit: int,
    cursor: str | None,
) -> list[ProposalPublic]:
    await _may_see(services, member, enterprise)
    rows = await _paging.fetch(
        request,
        response,
        _proposals.PROPOSALS,
        cursor,
        limit,
        lambda after, n: _proposals.list_proposals(
            services.engine, enterprise=enterprise, after=after, limit=n
        ),
    )
    approvals = await to_thread.run_sync(
        _proposals.approvals_of, services.engine, [r["proposal_id"] for r in rows]
    )
    return [await _public(services, r, approvals[r["proposal_id"]]) for r in rows]


async def _may_see(services: Services, member: Member, enterprise: str) -> None:
    if member.status != MemberStatus.ACTIVE or not await may_act_for(
        services, enterprise, member.address
    ):
        raise errors.ForbiddenError(
            f"only {enterprise} and its live agents see its grant proposals"
        )


async def _proposal(services: Services, proposal_id: str) -> dict[str, Any]:
    row = await to_thread.run_sync(_proposals.get_proposal, services.engine, proposal_id)
    if row is None:
        raise errors.ProposalNotFoundError(f"no proposal {proposal_id}")
    return row


def _status(row: dict[str, Any]) -> str:
    if row["status"] == "pending" and row["deadline"] < int(time.time()):
        return "expired"
    return str(row["status"])


async def _counting(
    services: Services, row: dict[str, Any], approvals: list[dict[str, Any]]
) -> tuple[list[tuple[str, str, bool]], int, int]:
    """Each approval with whether it counts now (as the contract will judge it)."""
    digest, needed, epoch = await _digest(services, row)
    out = []
    for a in approvals:
        try:
            current = _signed_by(digest, a["signature"]) == a["agent"]
        except errors.ApprovalSignatureInvalidError:
            current = False
        live = current and await may_act_for(services, row["enterprise"], a["agent"])
        out.append((a["agent"], a["signature"], live and a["agent"] != row["enterprise"]))
    return out, needed, epoch


async def _settle(services: Services, proposal_id: str) -> ProposalPublic:
    """Relay the grant if the approvals that count now reach the policy's number."""
    row = await _proposal(services, proposal_id)
    approvals = (await to_thread.run_sync(_proposals.approvals_of, services.engine, [proposal_id]))[
        proposal_id
    ]
    counting, needed, _ = await _counting(services, row, approvals)
    counted = [(agent, b32(sig)) for agent, sig, counts in counting if counts]
    if row["status"] == "pending" and len(counted) >= max(needed, 1):
        await _relay(services, row, eip712.pack_approvals(counted), counted[0][1])
        row = await _proposal(services, proposal_id)
    return await _public(services, row, approvals)


async def _relay(services: Services, row: dict[str, Any], packed: bytes, first: bytes) -> None:
    terms = _chain_terms(GrantTerms(**row["terms"]))
    grant_id = row["proposal_id"]
    data = _ABI.fn("grantWithApprovals").encode(
        terms.as_tuple(), int(row["nonce"]), int(row["deadline"]), packed
    )
    # The grants table's row as for any grant: the grantor is the enterprise; the signature
    # kept is the first counted approval (the rest are in the transaction).
    grant_row: dict[str, Any] = {
        "grant_id": grant_id,
        "asset_id": row["asset_id"],
        "owner": row["enterprise"],
        "grantor": row["enterprise"],
        "grantee": terms.grantee.lower(),
        "terms": row["terms"],
        "nonce": row["nonce"],
        "deadline": row["deadline"],
        "signature": "0x" + first.hex(),
    }
    package = bytes(row["key_package"])

    def store(tx_hash: str, block: int) -> None:
        services.vault.put_key_package(grant_id, package)
        _store.put_grant(services.engine, grant_row | {"tx_hash": tx_hash, "block": block})
        _proposals.mark_granted(services.engine, grant_id, tx_hash)

    await services.relay_custodian(
        key=f"grant:{grant_id}",
        kind="grant",
        payload={"row": grant_row, "key_package": base64.b64encode(package).decode()},
        data=data,
        on_confirmed=store,
    )


async def _public(
    services: Services, row: dict[str, Any], approvals: list[dict[str, Any]] | None
) -> ProposalPublic:
    if approvals is None:
        approvals = (
            await to_thread.run_sync(_proposals.approvals_of, services.engine, [row["proposal_id"]])
        )[row["proposal_id"]]
    counting, needed, epoch = await _counting(services, row, approvals)
    terms = GrantTerms(**row["terms"])
    asset_row = await to_thread.run_sync(_store.get_asset, services.engine, row["asset_id"])
    fields = await fields_for_asset(services, asset_row)
    return ProposalPublic(
        proposal_id=row["proposal_id"],
        enterprise=row["enterprise"],
        asset_id=row["asset_id"],
        proposer=row["proposer"],
        terms=terms,
        terms_text=describe_terms(terms, fields, asset_row),
        nonce=row["nonce"],
        deadline=row["deadline"],
        needed=needed,
        epoch=epoch,
        approvals=[ApprovalPublic(agent=a, signature=s, counts=c) for a, s, c in counting],
        status=_status(row),
        tx_hash=row["tx_hash"],
    )
