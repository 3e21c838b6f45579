"""SQL of grant proposals and their approvals (run in a worker thread)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from api import _paging
from api._paging import Keyset
from api.db import grant_approvals, grant_proposals

PROPOSALS = Keyset("proposals", (("created_at", int), ("proposal_id", str)))
#: Approvals kept per proposal: a threshold is a uint8, so more can never be needed.
MAX_APPROVALS = 255


def put_proposal(engine: Engine, row: dict[str, Any], agent: str, signature: str) -> bool:
    """The proposal and its proposer's approval; False if the id exists already."""
    now = int(time.time())
    try:
        with engine.begin() as conn:
            conn.execute(grant_proposals.insert().values(**row, created_at=now))
            conn.execute(
                grant_approvals.insert().values(
                    proposal_id=row["proposal_id"], agent=agent, signature=signature, created_at=now
                )
            )
    except IntegrityError:
        return False
    return True


def add_approval(engine: Engine, proposal_id: str, agent: str, signature: str) -> str:
    """``added``, ``duplicate`` (this agent approved already) or ``full``."""
    try:
        with engine.begin() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(grant_approvals)
                .where(grant_approvals.c.proposal_id == proposal_id)
            ).scalar_one()
            if count >= MAX_APPROVALS:
                return "full"
            conn.execute(
                grant_approvals.insert().values(
                    proposal_id=proposal_id,
                    agent=agent,
                    signature=signature,
                    created_at=int(time.time()),
                )
            )
    except IntegrityError:
        return "duplicate"
    return "added"


def get_proposal(engine: Engine, proposal_id: str) -> dict[str, Any] | None:
    stmt = sa.select(grant_proposals).where(grant_proposals.c.proposal_id == proposal_id.lower())
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def approvals_of(engine: Engine, proposal_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each proposal's approvals, oldest first (one query for a page of proposals)."""
    out: dict[str, list[dict[str, Any]]] = {pid: [] for pid in proposal_ids}
    if not proposal_ids:
        return out
    stmt = (
        sa.select(grant_approvals)
        .where(grant_approvals.c.proposal_id.in_(list(proposal_ids)))
        .order_by(grant_approvals.c.created_at, grant_approvals.c.agent)
    )
    with engine.connect() as conn:
        for r in conn.execute(stmt).mappings():
            out[r["proposal_id"]].append(dict(r))
    return out


def list_proposals(
    engine: Engine, *, enterprise: str, after: tuple[Any, ...] | None, limit: int
) -> list[dict[str, Any]]:
    t = grant_proposals
    order = [t.c.created_at, t.c.proposal_id]
    stmt = (
        sa.select(t)
        .where(t.c.enterprise == enterprise.lower())
        .where(_paging.after(order, after))
        .order_by(*order)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def mark_granted(engine: Engine, proposal_id: str, tx_hash: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            grant_proposals.update()
            .where(grant_proposals.c.proposal_id == proposal_id)
            .values(status="granted", tx_hash=tx_hash)
        )
