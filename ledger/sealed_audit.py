"""The index's sealed-access rows checked against the companion's logs.

The indexer writes one ``sealed_events`` row per ``AccessSealed``, ``SealExtended`` or
``AccessUnsealed`` log of the ledger's sealed-access companion. :func:`verify_sealed_index`
re-derives those rows from ``eth_getLogs`` on the node (never from the index) over a block
range and reports, keyed by ``(block_number, log_index)``, what the index is ``missing``,
what it holds ``extra`` and which rows it ``altered`` (event, seal id, subject, actor, args).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger import db
from ledger.indexer._abi import event_specs
from ledger.indexer._lifecycle import SEALED_EVENTS, _json_safe
from ledger.rpc import RpcClient
from ledger.sealed import sealed_abi, sealed_address

Key = tuple[int, int]
_COMPARED = ("event", "seal_id", "subject", "actor", "args", "tx_hash")


@dataclass(frozen=True)
class SealedAuditReport:
    from_block: int
    to_block: int
    chain_rows: int
    index_rows: int
    missing: list[Key] = field(default_factory=list)
    extra: list[Key] = field(default_factory=list)
    altered: dict[Key, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.altered)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "from_block": self.from_block,
            "to_block": self.to_block,
            "chain_rows": self.chain_rows,
            "index_rows": self.index_rows,
            "missing": [list(k) for k in self.missing],
            "extra": [list(k) for k in self.extra],
            "altered": [{"at": list(k), "fields": v} for k, v in self.altered.items()],
        }


def chain_rows(rpc: RpcClient, ledger: str, first: int, last: int) -> dict[Key, dict[str, Any]]:
    """The rows the indexer should hold for ``[first, last]``, from the companion's logs."""
    specs = {t: s for t, s in event_specs(sealed_abi().abi).items() if s.name in SEALED_EVENTS}
    flt = {
        "address": sealed_address(ledger),
        "fromBlock": hex(first),
        "toBlock": hex(last),
        "topics": [list(specs)],
    }
    out: dict[Key, dict[str, Any]] = {}
    for lg in rpc.call("eth_getLogs", [flt]) or []:
        if str(lg["address"]).lower() != sealed_address(ledger).lower():
            continue  # a node that answers with other contracts' logs is ignored
        spec = specs[str(lg["topics"][0]).lower()]
        args = spec.decode(lg["topics"], lg["data"])
        key = (int(lg["blockNumber"], 16), int(lg["logIndex"], 16))
        out[key] = {
            "event": spec.name,
            "seal_id": int(args["sealId"]),
            "subject": args["subject"],
            "actor": args[SEALED_EVENTS[spec.name]],
            "args": _json_safe(args),
            "tx_hash": str(lg["transactionHash"]).lower(),
        }
    return out


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
