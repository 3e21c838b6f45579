"""The index's claims checked against the claims companion's logs.

The indexer appends one ``claim_events`` row per ``ClaimFiled``, ``ClaimFulfilled`` or
``ClaimRefused`` log and keeps one ``claims`` row per claim current. :func:`verify_claims_index`
re-derives both from ``eth_getLogs`` on the node (never from the index) over a block range:

* events, keyed by ``(block_number, log_index)``: ``missing``, ``extra``, ``altered``
  (event, claim id, actor, args, transaction), like :mod:`ledger.sealed_audit`;
* claims filed in the range, keyed by claim id, in their state at the range's last block:
  ``claims_missing``, ``claims_extra``, ``claims_altered``. A row the index closed after the
  range is compared on what its filing fixed (the range cannot show the closing).

:func:`department_stats` derives the regulator's figures per department (outstanding claims,
the oldest one, how long answers took) from the same logs, and :func:`diff_stats` holds the
service's ``/v1/claims/stats`` against them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger import db
from ledger._companion_logs import Key, LogAuditReport, companion_logs
from ledger.claims import claims_abi, claims_address
from ledger.indexer._claims import CLAIM_EVENTS
from ledger.indexer._lifecycle import _json_safe
from ledger.rpc import RpcClient

_ACTOR = {"ClaimFiled": "relayer", "ClaimFulfilled": "department", "ClaimRefused": "department"}
_EVENT_COMPARED = ("event", "claim_id", "actor", "args", "tx_hash")
#: What a ClaimFiled log fixes for good.
_FILED = (
    "subject",
    "department",
    "schema_id",
    "reference_hash",
    "relayer",
    "filed_at",
    "block_number",
    "log_index",
    "tx_hash",
)
#: What a closing log sets.
_CLOSED = ("status", "closed_at", "asset_id", "reason_code", "reason_hash", "closed_tx_hash")


@dataclass(frozen=True)
class ClaimsAuditReport(LogAuditReport):
    """The ``claim_events`` rows' drift (:class:`LogAuditReport`) and the ``claims`` rows'."""

    chain_claims: int = 0
    index_claims: int = 0
    claims_missing: list[str] = field(default_factory=list)
    claims_extra: list[str] = field(default_factory=list)
    claims_altered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        claims_ok = not (self.claims_missing or self.claims_extra or self.claims_altered)
        return super().ok and claims_ok

    def to_json(self) -> dict[str, Any]:
        claims = {
            "chain": self.chain_claims,
            "index": self.index_claims,
            "missing": self.claims_missing,
            "extra": self.claims_extra,
            "altered": [{"claim_id": k, "fields": v} for k, v in self.claims_altered.items()],
        }
        return {**super().to_json(), "ok": self.ok, "claims": claims}


def chain_rows(
    rpc: RpcClient, ledger: str, first: int, last: int
) -> tuple[dict[Key, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The ``claim_events`` rows and the ``claims`` rows (filed in ``[first, last]``, as of
    ``last``) the indexer should hold, from the companion's logs."""
    events: dict[Key, dict[str, Any]] = {}
    claims: dict[str, dict[str, Any]] = {}
    for lg in companion_logs(
        rpc, claims_address(ledger), claims_abi().abi, CLAIM_EVENTS, first, last
    ):
        a = lg.args
        events[lg.key] = {
            "event": lg.name,
            "claim_id": a["claimId"],
            "actor": a[_ACTOR[lg.name]],
            "args": _json_safe(a),
            "tx_hash": lg.tx_hash,
        }
        if lg.name == "ClaimFiled":
            claims[a["claimId"]] = {
                "subject": a["subject"],
                "department": a["department"],
                "schema_id": a["schemaId"],
                "reference_hash": a["referenceHash"],
                "relayer": a["relayer"],
                "filed_at": int(a["at"]),
                "block_number": lg.key[0],
                "log_index": lg.key[1],
                "tx_hash": lg.tx_hash,
                "status": "open",
                "closed_at": None,
                "asset_id": None,
                "reason_code": None,
                "reason_hash": None,
                "closed_tx_hash": None,
            }
        elif a["claimId"] in claims:  # closed in range; one filed before it is not audited
            fulfilled = lg.name == "ClaimFulfilled"
            claims[a["claimId"]] |= {
                "status": "fulfilled" if fulfilled else "refused",
                "closed_at": int(a["at"]),
                "asset_id": a["assetId"] if fulfilled else None,
                "reason_code": None if fulfilled else int(a["reasonCode"]),
                "reason_hash": None if fulfilled else a["reasonHash"],
                "closed_tx_hash": lg.tx_hash,
            }
    return events, claims


def index_rows(
    engine: Engine, first: int, last: int
) -> tuple[dict[Key, dict[str, Any]], dict[str, dict[str, Any]]]:
    e, c = db.claim_events, db.claims
    with engine.connect() as conn:
        events = conn.execute(
            sa.select(e).where(e.c.block_number >= first, e.c.block_number <= last)
        ).mappings()
        claims = conn.execute(
            sa.select(c).where(c.c.block_number >= first, c.c.block_number <= last)
        ).mappings()
        return (
            {(r["block_number"], r["log_index"]): dict(r) for r in events},
            {str(r["claim_id"]): dict(r) for r in claims},
        )


def _differs(truth: dict[str, Any], given: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if truth[n] != given[n]]


def verify_claims_index(
    rpc: RpcClient, ledger: str, engine: Engine, first: int, last: int
) -> ClaimsAuditReport:
    events, claims = chain_rows(rpc, ledger, first, last)
    given_events, given_claims = index_rows(engine, first, last)
    altered = {
        k: d
        for k in sorted(events.keys() & given_events.keys())
        if (d := _differs(events[k], given_events[k], _EVENT_COMPARED))
    }
    claims_altered = {}
    for cid in sorted(claims.keys() & given_claims.keys()):
        row = given_claims[cid]
        later = row["updated_block"] > last  # closed after the range: its filing only
        names = _FILED if later else _FILED + _CLOSED
        if d := _differs(claims[cid], row, names):
            claims_altered[cid] = d
    return ClaimsAuditReport(
        first,
        last,
        len(events),
        len(given_events),
        chain_claims=len(claims),
        index_claims=len(given_claims),
        missing=sorted(events.keys() - given_events.keys()),
        extra=sorted(given_events.keys() - events.keys()),
        altered=altered,
        claims_missing=sorted(claims.keys() - given_claims.keys()),
        claims_extra=sorted(given_claims.keys() - claims.keys()),
        claims_altered=claims_altered,
    )


# ---- per department: outstanding, and how long answers took (the regulator's view) ---------

_COUNTS = ("filed", "open", "fulfilled", "refused", "oldest_open_at", "max_seconds_to_close")


def department_stats(claims: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per department (lowercase address), from :func:`chain_rows`' claims: filed, open,
    fulfilled, refused, the oldest open one's filing time, and the mean / longest time from
    filing to answer of the answered ones (the service's ``/v1/claims/stats`` fields)."""
    out: dict[str, dict[str, Any]] = {}
    took: dict[str, list[int]] = {}
    for claim in claims.values():
        dept = str(claim["department"]).lower()
        row = out.setdefault(
            dept,
            {"department": dept, "filed": 0, "open": 0, "fulfilled": 0, "refused": 0,
             "oldest_open_at": None, "mean_seconds_to_close": None,
             "max_seconds_to_close": None},
        )  # fmt: skip
        row["filed"] += 1
        row[claim["status"]] += 1
        if claim["status"] == "open":
            at = int(claim["filed_at"])
            row["oldest_open_at"] = min(at, row["oldest_open_at"] or at)
        else:
            took.setdefault(dept, []).append(int(claim["closed_at"]) - int(claim["filed_at"]))
    for dept, times in took.items():
        out[dept]["mean_seconds_to_close"] = sum(times) / len(times)
        out[dept]["max_seconds_to_close"] = max(times)
    return dict(sorted(out.items()))


def diff_stats(
    truth: Mapping[str, Mapping[str, Any]], rows: Iterable[Mapping[str, Any]]
) -> list[str]:
    """One line per difference between the chain's per-department figures and an answer's."""
    given = {str(r.get("department", "")).lower(): r for r in rows}
    out = [f"missing: {d}" for d in sorted(truth.keys() - given.keys())]
    out += [f"extra: {d}" for d in sorted(given.keys() - truth.keys())]
    for dept in sorted(truth.keys() & given.keys()):
        have, said = truth[dept], given[dept]
        names = [n for n in _COUNTS if have[n] != said.get(n)]
        mean, claimed = have["mean_seconds_to_close"], said.get("mean_seconds_to_close")
        if mean is None or claimed is None:
            if mean is not claimed:
                names.append("mean_seconds_to_close")
        elif abs(float(mean) - float(claimed)) > 1e-6 * max(1.0, float(mean)):
            names.append("mean_seconds_to_close")
        out += [f"altered: {dept} {n} (chain {have[n]!r}, answer {said.get(n)!r})" for n in names]
    return out
