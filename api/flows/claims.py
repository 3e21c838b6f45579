"""Claims (申领): the rules for filing a subject's signed claim and a department's answer.

Filing: the service relays only the caller's own ``ClaimRequest`` (signed by the subject,
who is the authenticated caller) to the ledger's claims companion, as the custodian (no gas
for her); the contract checks the rest (membership, department, schema, nonce, deadline).
Answering: the department signs its own ``fulfilClaim`` / ``refuseClaim`` transaction to the
companion; the service checks it names this claim and that the claim is open and the
caller's before it broadcasts. Listings come from the index, bounded and paginated; every
answer is a hint the wallet holds against the chain (:func:`ledger.claims.verify_claims`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from anyio import to_thread
from fastapi import Request, Response
from sqlalchemy.engine import Engine

from api import _paging, _store, errors
from api._paging import Keyset
from api._rawtx import decode_raw_tx, expect_call
from api.auth import Member, Role
from api.chain import RpcError
from api.flows._shared import b32, listing_scope
from api.models import ClaimAnswer, ClaimCreate, ClaimPublic, ClaimStats
from api.services import Services
from ledger import claims as cl
from ledger import db as ldb
from ledger.errors import LedgerError

CLAIMS = Keyset("claims", (("filed_at", int), ("claim_id", str)))
STATS = Keyset("claim-stats", (("department", str),))
_STATUSES = ("open", "fulfilled", "refused")


def _addresses(services: Services) -> tuple[str, str]:
    ledger = services.chain.ledger_address
    return ledger, cl.claims_address(ledger)


async def _chain_claim(services: Services, claim_id: bytes) -> cl.Claim:
    _, to = _addresses(services)
    fn = cl.claims_abi().fn("getClaim")
    try:
        raw = await services.chain.rpc(
            "eth_call", [{"to": to, "data": "0x" + fn.encode(claim_id).hex()}, "latest"]
        )
    except RpcError as exc:
        raise errors.ChainUnavailableError(f"cannot read claim: {exc}") from exc
    (value,) = fn.decode_output(bytes.fromhex(str(raw).removeprefix("0x")))
    return cl.Claim.from_tuple(claim_id, value)


def _public(claim: cl.Claim, row: dict[str, Any] | None = None, **extra: Any) -> ClaimPublic:
    data = claim.to_json()
    data.pop("claim_id")
    if row is not None:
        extra = {
            "reference_hash": row["reference_hash"],
            "tx_hash": row["tx_hash"],
            "block": row["block_number"],
        } | extra
    return ClaimPublic(claim_id="0x" + claim.claim_id.hex(), **data, **extra)


def _row_public(row: dict[str, Any]) -> ClaimPublic:
    refused = row["status"] == "refused"
    return ClaimPublic(
        claim_id=row["claim_id"],
        subject=row["subject"],
        department=row["department"],
        schema_id=row["schema_id"],
        reference_hash=row["reference_hash"],
        status=row["status"],
        filed_at=row["filed_at"],
        closed_at=row["closed_at"],
        asset_id=row["asset_id"],
        reason_code=row["reason_code"] if refused else None,
        reason=cl.REASON_CODES.get(row["reason_code"] or 0) if refused else None,
        reason_hash=row["reason_hash"] if refused else None,
        tx_hash=row["tx_hash"],
        block=row["block_number"],
    )


async def file_claim(services: Services, member: Member, body: ClaimCreate) -> ClaimPublic:
    r = body.request
    try:
        request = cl.ClaimRequest(
            r.subject, r.department, b32(r.schema_id), b32(r.reference_hash), r.nonce, r.deadline
        )
    except cl.ClaimsError as exc:
        raise errors.InvalidRequestError(str(exc)) from None
    sig = bytes.fromhex(body.signature.removeprefix("0x"))
    ledger, to = _addresses(services)
    chain_id = services.relayer.chain_id
    try:
        signer = cl.request_signer(chain_id, ledger, request, sig)
    except cl.ClaimsError as exc:
        raise errors.ClaimSignatureInvalidError(str(exc)) from None
    # The service pays only for a subject's own claim: nobody files, or spends a nonce, for another.
    if signer.lower() != request.subject.lower() or signer.lower() != member.address.lower():
        raise errors.ClaimSignatureInvalidError(
            f"signed by {signer}, sent by {member.address}, for {request.subject}"
        )
    claim_id = cl.request_digest(chain_id, ledger, request)
    receipt = await services.relay_custodian(
        key=f"claim:{request.subject.lower()}:{request.nonce}",
        kind="claim",
        payload={"claim_id": "0x" + claim_id.hex(), "subject": request.subject},
        data=cl.file_claim(request, sig).data,
        on_confirmed=lambda _t, _b: None,
        to=to,
    )
    claim = await _chain_claim(services, claim_id)
    return _public(
        claim,
        reference_hash="0x" + request.reference_hash.hex(),
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
    )


async def answer(
    services: Services, member: Member, claim_id: str, body: ClaimAnswer, fn_name: str
) -> ClaimPublic:
    """Relay the department's own ``fulfilClaim`` / ``refuseClaim`` for ``claim_id``."""
    _, to = _addresses(services)
    fn = cl.claims_abi().fn(fn_name)
    tx = decode_raw_tx(body.raw_transaction)
    expect_call(
        tx,
        signer=member.address,
        ledger=to,
        chain_id=services.deployment.chain_id,
        selector=fn.selector,
        what=fn_name,
    )
    try:
        args = fn.decode_input(tx.data)
    except LedgerError as exc:
        raise errors.InvalidRequestError(f"raw_transaction: {exc}") from exc
    if "0x" + bytes(args[0]).hex() != claim_id.lower():
        raise errors.InvalidRequestError(f"{fn_name} names another claim")
    claim = await _chain_claim(services, b32(claim_id))
    if claim.status == cl.ClaimStatus.NONE:
        raise errors.ClaimNotFoundError(f"no claim {claim_id} on the ledger")
    if claim.department.lower() != member.address.lower():
        raise errors.ClaimNotDepartmentError(f"claim {claim_id} asks {claim.department}")
    if claim.status != cl.ClaimStatus.OPEN:
        raise errors.ClaimClosedError(f"claim {claim_id} is {claim.status.label}")
    receipt = await services.relay_member_tx(
        key=f"claim-{fn_name}:{claim_id.lower()}",
        kind="claim",
        payload={"claim_id": claim_id},
        tx=tx,
        on_confirmed=lambda _t, _b: None,
    )
    closed = await _chain_claim(services, b32(claim_id))
    row = await to_thread.run_sync(_get, services.engine, claim_id)
    public = _public(closed, row)
    return public.model_copy(update={"tx_hash": receipt.tx_hash, "block": receipt.block_number})


# ---- reading ----------------------------------------------------------------------------


def _get(engine: Engine, claim_id: str) -> dict[str, Any] | None:
    try:
        with engine.connect() as conn:
            row = (
                conn.execute(sa.select(ldb.claims).where(ldb.claims.c.claim_id == claim_id.lower()))
                .mappings()
                .first()
            )
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return None
    return dict(row) if row is not None else None


def _list(
    engine: Engine, after: tuple[Any, ...] | None, limit: int, **equal: str | None
) -> list[dict[str, Any]]:
    try:
        return _store._page(engine, ldb.claims, CLAIMS, after, limit, **equal)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        raise errors.NotReadyError("the claims index is not built (indexer not running)") from exc


async def list_claims(
    services: Services,
    member: Member,
    request: Request,
    response: Response,
    *,
    status: str | None,
    department: str | None,
    limit: int,
    cursor: str | None,
) -> list[ClaimPublic]:
    """A subject its own claims, a department its queue, a regulator every claim."""
    if status is not None and status not in _STATUSES:
        raise errors.InvalidRequestError(f"status is one of {', '.join(_STATUSES)}")
    scope = listing_scope(
        member,
        [(Role.REGULATOR, None), (Role.ISSUER, "department"), (Role.SUBJECT, "subject")],
        "only subjects, departments and regulators have claims to list",
    )
    if department is not None:
        if scope.get("department", department).lower() != department.lower():
            raise errors.ForbiddenError("a department lists only its own queue")
        scope["department"] = department
    rows = await _paging.fetch(
        request,
        response,
        CLAIMS,
        cursor,
        limit,
        lambda after, n: _list(services.engine, after, n, status=status, **scope),
    )
    return [_row_public(r) for r in rows]


async def get_claim(services: Services, member: Member, claim_id: str) -> ClaimPublic:
    claim = await _chain_claim(services, b32(claim_id))
    if claim.status == cl.ClaimStatus.NONE:
        raise errors.ClaimNotFoundError(f"no claim {claim_id} on the ledger")
    me = member.address.lower()
    if not member.has(Role.REGULATOR) and me not in (
        claim.subject.lower(),
        claim.department.lower(),
    ):
        raise errors.ForbiddenError(f"{member.address} is not a party to claim {claim_id}")
    row = await to_thread.run_sync(_get, services.engine, claim_id)
    return _public(claim, row)


def _stats(engine: Engine, after: tuple[Any, ...] | None, limit: int) -> list[dict[str, Any]]:
    c = ldb.claims.c
    is_open = c.status == "open"
    closed = c.closed_at.is_not(None)
    took = c.closed_at - c.filed_at
    stmt = (
        sa.select(
            c.department,
            sa.func.count().label("filed"),
            sa.func.count().filter(is_open).label("open"),
            sa.func.count().filter(c.status == "fulfilled").label("fulfilled"),
            sa.func.count().filter(c.status == "refused").label("refused"),
            sa.func.min(c.filed_at).filter(is_open).label("oldest_open_at"),
            sa.func.avg(took).filter(closed).label("mean_seconds_to_close"),
            sa.func.max(took).filter(closed).label("max_seconds_to_close"),
        )
        .where(_paging.after([c.department], after))
        .group_by(c.department)
        .order_by(c.department)
        .limit(limit)
    )
    try:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        raise errors.NotReadyError("the claims index is not built (indexer not running)") from exc
    for r in rows:
        mean = r["mean_seconds_to_close"]
        r["mean_seconds_to_close"] = float(mean) if mean is not None else None
        r["max_seconds_to_close"] = (
            int(r["max_seconds_to_close"]) if r["max_seconds_to_close"] is not None else None
        )
    return rows


async def stats(
    services: Services, request: Request, response: Response, *, limit: int, cursor: str | None
) -> list[ClaimStats]:
    """Per department: claims filed, outstanding (and the oldest), answered, time to answer."""
    rows = await _paging.fetch(
        request, response, STATS, cursor, limit, lambda after, n: _stats(services.engine, after, n)
    )
    return [ClaimStats(**r) for r in rows]
