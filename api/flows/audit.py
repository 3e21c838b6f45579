"""Audit: the index checked against the chain, for a regulator.

The rows the trace serves for a block range are re-derived from ``eth_getLogs`` on the
node (``ledger.audit``), never from the index, and every difference is reported:
``missing`` (on chain, not served), ``extra`` (served, not on chain), ``altered``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from anyio import to_thread
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api import errors
from api.flows.trace import TraceRowPublic
from api.services import Services
from ledger import audit, trace
from ledger.errors import LedgerError
from ledger.rpc import RpcClient
from ledger.sealed_audit import SealedAuditReport, verify_sealed_index
from ledger.trace import TraceFilter, TraceRow

#: Largest block range one request may audit (larger ranges: several requests, or the CLI).
MAX_AUDIT_SPAN = 100_000


class AlteredRow(BaseModel):
    block_number: int
    log_index: int
    tx_hash: str
    fields: dict[str, dict[str, Any]] = Field(
        description="Differing fields: {name: {chain: value, claimed: value}}"
    )
    chain: TraceRowPublic
    claimed: TraceRowPublic


class AuditReportPublic(BaseModel):
    ok: bool
    from_block: int
    to_block: int
    chain_rows: int = Field(description="Rows re-derived from chain logs")
    claimed_rows: int = Field(description="Rows the index serves for the same range and filter")
    missing: list[TraceRowPublic] = Field(description="On chain, absent from the index")
    extra: list[TraceRowPublic] = Field(description="In the index, not on chain")
    altered: list[AlteredRow]
    seconds: float
    sealed: dict[str, Any] | None = Field(
        default=None,
        description="The index's sealed-access rows (whole range, any filter) against the "
        "companion's logs: ok, missing, extra, altered (ledger.sealed_audit)",
    )


def _row(r: TraceRow) -> TraceRowPublic:
    return TraceRowPublic(**r.to_json(), fields=None)


def _public(report: audit.AuditReport) -> AuditReportPublic:
    return AuditReportPublic(
        ok=report.ok,
        from_block=report.from_block,
        to_block=report.to_block,
        chain_rows=report.chain_rows,
        claimed_rows=report.claimed_rows,
        missing=[_row(r) for r in report.missing],
        extra=[_row(r) for r in report.extra],
        altered=[
            AlteredRow(
                block_number=a.block_number,
                log_index=a.log_index,
                tx_hash=a.chain.tx_hash,
                fields=a.fields,
                chain=_row(a.chain),
                claimed=_row(a.claimed),
            )
            for a in report.altered
        ],
        seconds=round(report.seconds, 3),
    )


async def verify(
    services: Services, from_block: int | None, to_block: int | None, flt: TraceFilter
) -> AuditReportPublic:
    manifest = services.deployment
    first = manifest.deploy_block if from_block is None else from_block
    if to_block is None:
        to_block = await to_thread.run_sync(_indexed_to, services.engine)
        if to_block is None:
            raise errors.NotReadyError("the event index is not built yet (the indexer has not run)")
    if to_block < first:
        raise errors.InvalidRequestError(f"to_block {to_block} is below from_block {first}")
    if to_block - first + 1 > MAX_AUDIT_SPAN:
        raise errors.AuditRangeTooLargeError(
            f"blocks {first}..{to_block} requested, at most {MAX_AUDIT_SPAN} per request"
        )
    last = to_block

    def run() -> audit.AuditReport:
        return audit.verify_index(
            services.settings.rpc_url,
            manifest,
            services.engine,
            from_block=first,
            to_block=last,
            flt=flt,
        )

    def run_sealed() -> SealedAuditReport:
        with RpcClient(services.settings.rpc_url) as rpc:
            return verify_sealed_index(rpc, manifest.ledger_address, services.engine, first, last)

    try:
        report = await to_thread.run_sync(run)
        sealed = await to_thread.run_sync(run_sealed)
    except trace.IndexNotReadyError as exc:
        raise errors.NotReadyError(str(exc)) from exc
    except LedgerError as exc:
        raise errors.ChainUnavailableError(f"audit could not read the chain: {exc}") from exc
    public = _public(report)
    return public.model_copy(update={"ok": public.ok and sealed.ok, "sealed": sealed.to_json()})


def _indexed_to(engine: Engine) -> int | None:
    try:
        with engine.connect() as conn:
            return trace.last_indexed_block(conn)
    except sa.exc.SQLAlchemyError:
        return None
