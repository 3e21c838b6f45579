"""Reading the index at its cursor while the indexer commits a block range.

tests/api/test_replicas.py once saw the survivor's index hold 994 of the chain's 1,000
grants with the cursor at the chain head: it read ``count(*) FROM grants`` and then the
cursor, in two statements, while the indexer committed the range with the last 6 grants
between them. Here that commit is placed exactly there: whatever commits during the read,
``index_state`` returns the cursor together with the rows of that same instant.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from _index_state import index_state
from _indexer_world import Ledger, make_indexer

from ledger.indexer import SyncResult


def test_cursor_and_rows_come_from_one_snapshot_while_a_range_commits(
    ledger: Ledger, db_url: str
) -> None:
    asset = ledger.anchor("snapshot")
    ledger.grant(asset, 1)
    indexer = make_indexer(ledger, db_url)
    engine = indexer.engine
    try:
        indexer.sync_once()
        with engine.connect() as conn:
            before = index_state(conn)
        assert before[0] == ledger.w3.eth.block_number and len(before[1]) == 1
        more = {ledger.grant(asset, n) for n in range(2, 8)}  # 6 grants, 6 blocks
        head = ledger.w3.eth.block_number
        synced: list[SyncResult] = []

        def commit_a_range(*_: Any) -> None:
            # Right after the reader's (first) statement ran: the indexer commits a range.
            if not synced:
                synced.append(indexer.sync_once())

        with engine.connect() as reader:
            sa.event.listen(reader, "after_cursor_execute", commit_a_range)
            state = index_state(reader)
        assert synced and synced[0].last_block == head  # the commit did land mid-read
        assert state in (before, (head, before[1] | more)), state
        with engine.connect() as conn:
            assert index_state(conn) == (head, before[1] | more)
    finally:
        indexer.close()
        engine.dispose()
