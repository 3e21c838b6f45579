"""The index's sealed-access rows checked against the companion's logs.

The indexer writes one ``sealed_events`` row per ``AccessSealed``, ``SealExtended`` or
``AccessUnsealed`` log of the ledger's sealed-access companion. :func:`verify_sealed_index`
re-derives those rows from ``eth_getLogs`` on the node (never from the index) over a block
range and reports, keyed by ``(block_number, log_index)``, what the index is ``missing``,
what it holds ``extra`` and which rows it ``altered`` (event, seal id, subject, actor, args).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger import db
from ledger._companion_logs import Key, LogAuditReport, companion_logs
from ledger.indexer._lifecycle import SEALED_EVENTS, _json_safe
from ledger.rpc import RpcClient
from ledger.sealed import sealed_abi, sealed_address

_COMPARED = ("event", "seal_id", "subject", "actor", "args", "tx_hash")


class SealedAuditReport(LogAuditReport):
    """The sealed-access rows' drift (:class:`LogAuditReport`)."""


def chain_rows(rpc: RpcClient, ledger: str, first: int, last: int) -> dict[Key, dict[str, Any]]:
    """The rows the indexer should hold for ``[first, last]``, from the companion's logs."""
    logs = companion_logs(rpc, sealed_address(ledger), sealed_abi().abi, SEALED_EVENTS, first, last)
    return {
        lg.key: {
            "event": lg.name,
            "seal_id": int(lg.args["sealId"]),
            "subject": lg.args["subject"],
            "actor": lg.args[SEALED_EVENTS[lg.name]],
            "args": _json_safe(lg.args),
            "tx_hash": lg.tx_hash,
        }
        for lg in logs
    }


def index_rows(engine: Engine, first: int, last: int) -> dict[Key, dict[str, Any]]:
    t = db.sealed_events
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t).where(t.c.block_number >= first, t.c.block_number <= last)
        ).mappings()
        return {(r["block_number"], r["log_index"]): dict(r) for r in rows}


def verify_sealed_index(
    rpc: RpcClient, ledger: str, engine: Engine, first: int, last: int
) -> SealedAuditReport:
    truth = chain_rows(rpc, ledger, first, last)
    given = index_rows(engine, first, last)
    altered = {}
    for key in sorted(truth.keys() & given.keys()):
        differs = [n for n in _COMPARED if truth[key][n] != given[key][n]]
        if differs:
            altered[key] = differs
    return SealedAuditReport(
        first,
        last,
        len(truth),
        len(given),
        missing=sorted(truth.keys() - given.keys()),
        extra=sorted(given.keys() - truth.keys()),
        altered=altered,
    )
