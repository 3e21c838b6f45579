"""The indexer's cursor and grant rows as of one instant: one statement, one snapshot.

The indexer commits each block range's rows together with its cursor, so any single
snapshot of the database holds exactly the events up to its cursor. Two statements take
two snapshots (PostgreSQL's READ COMMITTED, and SQLite outside an explicit transaction): a
range committed between them pairs the new cursor with the old rows, which reads like an
index that skipped events although it did not.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger import db


def index_state(conn: Connection) -> tuple[int | None, set[str]]:
    """``(indexer_cursor.last_block, grant ids in grants)``, read in one statement."""
    cursor, grants = db.indexer_cursor, db.grants
    rows = conn.execute(
        sa.select(cursor.c.last_block, grants.c.grant_id)
        .select_from(cursor.outerjoin(grants, sa.true()))
        .where(cursor.c.id == 1)
    ).all()
    if not rows:
        return None, set()
    return int(rows[0][0]), {str(r[1]) for r in rows if r[1] is not None}
