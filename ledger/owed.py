"""What grantees owe, from the indexer's tables: recall and deletion acknowledgements.

The rules are the contract's (:mod:`ledger.lifecycle`): a grant owes a recall once the
version it pulled is superseded (``uses > 0``), due at once; it owes a deletion once it has
ended (revoked, expired, out of uses), due ``retention`` seconds after the end. One row per
grant, keyed by grant id (keyset pages), carrying both states so that an institution's inbox,
the regulator's overview and a subject's grants read the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger import db
from ledger.lifecycle import deletion_due, ended_at, has_ended, recall_owed
from ledger.models import GrantStatus

_G, _S, _E, _A = db.grants, db.assets, db.asset_events, db.accesses
_USE_LIMIT = 0xFFFF


@dataclass(frozen=True)
class Owed:
    """One grant's lifecycle duties at ``now`` (``None``: not owed, or not yet)."""

    grant_id: str
    institution: str
    subject: str
    asset_id: str
    uses: int
    retention: int
    #: When the version it pulled was superseded (a recall is owed from then).
    recalled_at: int | None
    recall_acknowledged_at: int | None
    #: When the grant ended, and when its deletion acknowledgement is due.
    ended_at: int | None
    deletion_due: int | None
    deletion_acknowledged_at: int | None

    def outstanding(self, now: int) -> dict[str, Any]:
        """What is still open: recall age, deletion due/overdue (empty if nothing)."""
        out: dict[str, Any] = {}
        if self.recalled_at is not None and self.recall_acknowledged_at is None:
            out["recall_age"] = max(0, now - self.recalled_at)
        if self.deletion_due is not None and self.deletion_acknowledged_at is None:
            out["deletion_overdue"] = now > self.deletion_due
        return out


def _ended_sql(now: int) -> Any:
    limit = sa.case((_G.c.max_uses == 0, _USE_LIMIT), else_=_G.c.max_uses)
    return sa.or_(_G.c.status == "revoked", _G.c.expiry <= now, _G.c.uses >= limit)


def page(
    conn: Connection,
    *,
    now: int,
    institution: str | None = None,
    subject: str | None = None,
    outstanding: bool = True,
    after: str | None = None,
    limit: int = 100,
) -> list[Owed]:
    """Grants (ordered by id, after ``after``) that owe or owed an acknowledgement at ``now``;
    ``outstanding``: only those with one still open."""
    superseded = _S.c.status == "superseded"
    recall = sa.and_(superseded, _G.c.uses > 0)
    deletion = _ended_sql(now)
    if outstanding:
        conds = [
            sa.or_(
                sa.and_(recall, _G.c.recall_acked_at.is_(None)),
                sa.and_(deletion, _G.c.deletion_acked_at.is_(None)),
            )
        ]
    else:
        conds = [sa.or_(recall, deletion)]
    if institution is not None:
        conds.append(_G.c.grantee == institution.lower())
    if subject is not None:
        conds.append(_G.c.owner == subject.lower())
    if after is not None:
        conds.append(_G.c.grant_id > after.lower())
    stmt = (
        sa.select(_G, _S.c.status.label("asset_status"))
        .select_from(_G.outerjoin(_S, _S.c.asset_id == _G.c.asset_id))
        .where(*conds)
        .order_by(_G.c.grant_id)
        .limit(limit)
    )
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    return _complete(conn, rows, now)


def _complete(conn: Connection, rows: Sequence[dict[str, Any]], now: int) -> list[Owed]:
    """The times the grants table does not hold: supersession and last access."""
    assets = sorted({r["asset_id"] for r in rows})
    ids = sorted({r["grant_id"] for r in rows})
    superseded_at: dict[str, int] = {}
    last_access: dict[str, int] = {}
    if assets:
        q = sa.select(_E.c.asset_id, _E.c.block_timestamp).where(
            _E.c.event == "AssetSuperseded", _E.c.asset_id.in_(assets)
        )
        superseded_at = {a: int(t) for a, t in conn.execute(q)}
    if ids:
        q2 = (
            sa.select(_A.c.grant_id, sa.func.max(_A.c.block_timestamp))
            .where(_A.c.grant_id.in_(ids))
            .group_by(_A.c.grant_id)
        )
        last_access = {g: int(t) for g, t in conn.execute(q2)}
    out = []
    for r in rows:
        status = GrantStatus[str(r["status"]).upper()]
        uses, max_uses, expiry = int(r["uses"]), int(r["max_uses"]), int(r["expiry"])
        recalled = superseded_at.get(r["asset_id"])
        owes_recall = recall_owed(uses, r.get("asset_status") == "superseded")
        end = ended_at(
            status,
            expiry,
            uses,
            max_uses,
            revoked_at=r["revoked_at"],
            last_access_at=last_access.get(r["grant_id"]),
            now=now,
        )
        retention = int(r["retention"])
        out.append(
            Owed(
                grant_id=r["grant_id"],
                institution=r["grantee"],
                subject=r["owner"],
                asset_id=r["asset_id"],
                uses=uses,
                retention=retention,
                recalled_at=recalled if owes_recall else None,
                recall_acknowledged_at=r["recall_acked_at"],
                ended_at=end if has_ended(status, expiry, uses, max_uses, now) else None,
                deletion_due=None if end is None else deletion_due(end, retention),
                deletion_acknowledged_at=r["deletion_acked_at"],
            )
        )
    return out
