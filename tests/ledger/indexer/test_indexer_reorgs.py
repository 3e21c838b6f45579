"""Indexer against a real anvil and real SQLite/PostgreSQL databases: reorgs, a chain behind
its database, another chain, a second writer, stale state.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from _fixtures import start_anvil
from _indexer_world import (
    Ledger,
    assert_index_matches_chain,
    busy_history,
    make_indexer,
)
from eth_utils import keccak

from ledger import db
from ledger.indexer import (
    ChainBehindDatabaseError,
    ChainMismatchError,
    Cursor,
    Indexer,
    ReorgTooDeepError,
)


def test_reorg_rolls_back_to_common_ancestor_and_reindexes(ledger: Ledger, db_url: str) -> None:
    grants = busy_history(ledger)
    indexer = make_indexer(ledger, db_url, batch_size=4)
    indexer.sync_once()
    fork_point = ledger.w3.eth.block_number
    snapshot = ledger.rpc("evm_snapshot")
    # Branch A: indexed, then abandoned.
    a3 = ledger.anchor("a3")
    ledger.grant(a3, 3)
    ledger.access([grants[1], grants[1]], 300)
    ledger.tx(
        ledger.contract.functions.suspendMember(ledger.subject, keccak(text="x")), ledger.governor
    )
    indexer.sync_once()
    branch_a_head = ledger.w3.eth.block_number
    assert_index_matches_chain(ledger, indexer.engine)
    # Branch B: different events from the fork point, and longer.
    ledger.rpc("evm_revert", [snapshot])
    a4 = ledger.anchor("a4")
    g4 = ledger.grant(a4, 4)
    ledger.access([g4, grants[1]], 400)
    ledger.mine(branch_a_head - ledger.w3.eth.block_number + 2)
    result = indexer.sync_once()
    assert result.rolled_back_to == fork_point
    assert_index_matches_chain(ledger, indexer.engine)
    with indexer.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("select count(*) from assets where asset_id = :a"), {"a": a3}
            ).scalar_one()
            == 0
        )
        status = conn.execute(
            sa.text("select status from members where address = :a"), {"a": ledger.subject.lower()}
        ).scalar_one()
        assert status == "active"
    indexer.close()


def test_node_behind_database_is_a_typed_error_then_recovers(ledger: Ledger, db_url: str) -> None:
    busy_history(ledger)
    snapshot = ledger.rpc("evm_snapshot")
    behind = ledger.w3.eth.block_number
    ledger.anchor("later")
    ledger.mine(3)
    indexer = make_indexer(ledger, db_url)
    indexer.sync_once()
    ledger.rpc("evm_revert", [snapshot])  # the node now serves a shorter prefix of the same chain
    with pytest.raises(ChainBehindDatabaseError) as info:
        indexer.sync_once()
    assert info.value.chain_head == behind
    assert indexer.cursor() is not None and indexer.cursor().last_block > behind  # type: ignore[union-attr]
    # The node moves on along another history: the index rolls back and follows it.
    ledger.anchor("other")
    ledger.mine(6)
    result = indexer.sync_once()
    assert result.rolled_back_to == behind
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def test_reorg_deeper_than_kept_hashes_is_a_typed_error(ledger: Ledger, db_url: str) -> None:
    snapshot = ledger.rpc("evm_snapshot")
    ledger.anchor("x")
    ledger.mine(6)
    indexer = make_indexer(ledger, db_url, reorg_window=2)
    indexer.sync_once()
    before = indexer.cursor()
    ledger.rpc("evm_revert", [snapshot])
    ledger.anchor("y")
    ledger.mine(10)
    with pytest.raises(ReorgTooDeepError):
        indexer.sync_once()
    assert indexer.cursor() == before  # nothing written
    indexer.close()


def test_database_of_another_chain_is_refused(ledger: Ledger, db_url: str) -> None:
    indexer = make_indexer(ledger, db_url)
    indexer.sync_once()
    with start_anvil() as other:
        stranger = make_indexer(ledger, db_url, rpc_url=other.url)
        with pytest.raises(ChainMismatchError, match="genesis hash"):
            stranger.sync_once()
        stranger.close()
    indexer.close()


def test_second_indexer_advancing_the_cursor_is_detected(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import ConcurrentIndexerError

    busy_history(ledger)
    first = make_indexer(ledger, db_url, batch_size=2)
    second = make_indexer(ledger, db_url)
    first.cursor()  # tables exist before both start

    def meanwhile() -> bool:
        second.sync_once()  # runs between `first` reading the cursor and writing its range
        return False

    with pytest.raises(ConcurrentIndexerError):
        first.sync_once(should_stop=meanwhile)
    assert_index_matches_chain(ledger, second.engine)
    first.close()
    second.close()


def test_reorg_between_cursor_check_and_fetch_writes_nothing(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import ChainMovedError

    indexer = make_indexer(ledger, db_url)
    indexer.sync_once()
    snapshot = ledger.rpc("evm_snapshot")
    ledger.anchor("p")
    indexer.sync_once()
    before = indexer.cursor()
    ledger.mine(2)

    def reorg() -> bool:
        ledger.rpc("evm_revert", [snapshot])
        ledger.anchor("q")
        ledger.mine(4)
        return False

    with pytest.raises(ChainMovedError):
        indexer.sync_once(should_stop=reorg)
    assert indexer.cursor() == before
    indexer.sync_once()  # the next sync rolls back and follows the new branch
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def test_event_about_state_before_start_block_is_inconsistent(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import InconsistentEventError

    live_grant = busy_history(ledger)[1]
    start = ledger.w3.eth.block_number + 1  # the grant's creation lies before this block
    ledger.tx(ledger.contract.functions.pause(bytes.fromhex(live_grant[2:])), ledger.subject)
    indexer = Indexer(
        rpc_url=ledger.url,
        ledger_address=ledger.address,
        engine=db.make_engine(db_url),
        start_block=start,
    )
    with pytest.raises(InconsistentEventError, match=live_grant):
        indexer.sync_once()
    assert indexer.cursor() == Cursor(start - 1, None)  # nothing written
    indexer.close()
