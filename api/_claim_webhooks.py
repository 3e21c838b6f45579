"""Claim webhooks (kind ``claim``): a department learns of each claim filed to it, a subject
of each of its claims fulfilled or refused.

Events come from the event index's ``claim_events`` (one row per log of the claims companion),
so a notification is only ever sent for something the chain holds. A webhook's position in
them is ``after_key[4:6]`` = ``(block, log index)`` (a webhook registered before claim
webhooks existed starts after its registration block, ``after_key[1]``). Delivery, signing,
retries and idempotency are :mod:`api.webhooks`' (event key ``claim:<block>:<log index>``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ledger import db
from ledger.claims import REASON_CODES

_EVENTS = db.claim_events
_CLAIMS = db.claims
#: Payload ``type`` per event.
TYPES = {
    "ClaimFiled": "claim.filed",
    "ClaimFulfilled": "claim.fulfilled",
    "ClaimRefused": "claim.refused",
}
_LOG_MAX = 2**31 - 1


def position(after_key: list[int]) -> tuple[int, int]:
    """The webhook's ``(block, log index)`` in the claim events."""
    if len(after_key) >= 6:
        return after_key[4], after_key[5]
    return after_key[1], _LOG_MAX


def initial(last_block: int) -> list[int]:
    """What :func:`position` reads for a webhook registered at ``last_block``."""
    return [last_block, _LOG_MAX]


def _select() -> sa.Select[Any]:
    """A claim event with its claim's parties and schema."""
    e, c = _EVENTS, _CLAIMS
    return sa.select(
        e.c.event,
        e.c.claim_id,
        e.c.args,
        e.c.block_number,
        e.c.block_hash,
        e.c.block_timestamp,
        e.c.log_index,
        e.c.tx_hash,
        c.c.subject,
        c.c.department,
        c.c.schema_id,
    ).join(c, c.c.claim_id == e.c.claim_id)


def rows_after(
    conn: sa.Connection, member: str, after: tuple[int, int], limit: int
) -> list[dict[str, Any]]:
    """Claim events for ``member`` after ``after``, in chain order: filings to it as the
    department, fulfilments and refusals of its claims as the subject."""
    e, c = _EVENTS, _CLAIMS
    block, log = after
    mine = sa.or_(
        sa.and_(e.c.event == "ClaimFiled", c.c.department == member),
        sa.and_(e.c.event.in_(("ClaimFulfilled", "ClaimRefused")), c.c.subject == member),
    )
    later = sa.or_(
        e.c.block_number > block, sa.and_(e.c.block_number == block, e.c.log_index > log)
    )
    rows = conn.execute(
        _select().where(mine, later).order_by(e.c.block_number, e.c.log_index).limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def subject_rows_after(
    conn: sa.Connection, subject: str, after: tuple[int, int, int, int] | None, now: int, limit: int
) -> list[dict[str, Any]]:
    """Every claim event of ``subject``'s claims (filed, fulfilled, refused) after the trace
    key ``after`` (``(at, block, log index, rank)``, rank 0 for an event), at or before the
    indexed head's time ``now``, in chain order: her event stream merges them with the trace
    rows (the same key, so one cursor serves both)."""
    e, c = _EVENTS, _CLAIMS
    conds = [c.c.subject == subject.lower(), e.c.block_timestamp <= now]
    if after is not None:
        at, block, log, _rank = after
        key = (e.c.block_timestamp, e.c.block_number, e.c.log_index)
        conds.append(
            sa.or_(
                key[0] > at,
                sa.and_(key[0] == at, key[1] > block),
                # at the same place an event (rank 0) is never after the key (rank >= 0)
                sa.and_(key[0] == at, key[1] == block, key[2] > log),
            )
        )
    rows = conn.execute(
        _select()
        .where(*conds)
        .order_by(e.c.block_timestamp, e.c.block_number, e.c.log_index)
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def event_data(row: dict[str, Any]) -> dict[str, Any]:
    """One claim event as the chain's log says it, and where (webhooks and event streams)."""
    args = dict(row["args"])
    refused = row["event"] == "ClaimRefused"
    return {
        "event": row["event"],
        "claim_id": row["claim_id"],
        "subject": row["subject"],
        "department": row["department"],
        "schema_id": row["schema_id"],
        "at": int(args["at"]),
        "asset_id": args.get("assetId"),
        "reason_code": args.get("reasonCode"),
        "reason_hash": args.get("reasonHash"),
        "block_number": row["block_number"],
        "block_hash": row["block_hash"],
        "log_index": row["log_index"],
        "tx_hash": row["tx_hash"],
        "reason": REASON_CODES.get(int(args["reasonCode"])) if refused else None,
    }


def payload(row: dict[str, Any], webhook_id: str) -> dict[str, Any]:
    """The delivery body of one claim event."""
    data = event_data(row)
    return {
        "id": f"claim:{row['block_number']}:{row['log_index']}",
        "type": TYPES[row["event"]],
        "webhook_id": webhook_id,
        "data": data,
    }
