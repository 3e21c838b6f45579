"""Indexer against a real anvil and real SQLite/PostgreSQL databases: syncing: every kind of
event, idempotence, the background loop, settings, the event hook.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from _indexer_world import (
    Ledger,
    assert_index_matches_chain,
    busy_history,
    chain_logs,
    make_indexer,
)

from ledger.indexer import (
    Cursor,
    Indexer,
)


def test_indexes_every_event_kind_and_is_idempotent(ledger: Ledger, db_url: str) -> None:
    busy_history(ledger)
    indexer = make_indexer(ledger, db_url, batch_size=3)
    result = indexer.sync_once()
    assert result.events == len(chain_logs(ledger))
    assert result.last_block == ledger.w3.eth.block_number
    assert_index_matches_chain(ledger, indexer.engine)
    # A second sync and a second indexer on the same DB add nothing.
    assert indexer.sync_once().events == 0
    again = make_indexer(ledger, db_url)
    assert again.sync_once().events == 0
    assert_index_matches_chain(ledger, indexer.engine)
    with indexer.engine.connect() as conn:
        kinds = {r[0] for r in conn.execute(sa.text("select event from grant_events"))}
        assert kinds == {"ConsentGranted", "ConsentRevoked", "ConsentPaused", "ConsentResumed"}
        assert conn.execute(sa.text("select count(*) from accesses")).scalar_one() == 3
        assert conn.execute(sa.text("select count(*) from access_refusals")).scalar_one() == 1
        owners = {r[0] for r in conn.execute(sa.text("select owner from accesses"))}
        assert owners == {ledger.subject.lower()}
        grantees = {r[0] for r in conn.execute(sa.text("select grantee from accesses"))}
        assert grantees == {ledger.bank.lower()}
    indexer.close()
    again.close()


def test_run_in_background_thread_until_stopped(ledger: Ledger, db_url: str) -> None:
    busy_history(ledger)
    indexer = make_indexer(ledger, db_url)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            indexer.run(stop, poll_interval=0.05)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    head = ledger.w3.eth.block_number
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not errors:
            cursor = indexer.cursor()
            if cursor is not None and cursor.last_block >= head:
                break
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and not errors
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def test_from_settings_builds_a_working_indexer(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import IndexerSettings

    settings = IndexerSettings(
        rpc_url=ledger.url,
        ledger_address=ledger.address,
        start_block=ledger.deploy_block,
        database_url=db_url,
        batch_size=2,
    )
    indexer = Indexer.from_settings(settings)
    assert indexer.sync_once().events == len(chain_logs(ledger))
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def test_event_hook_runs_in_the_range_transaction(ledger: Ledger, db_url: str) -> None:
    """``on_events`` sees every decoded event once, inside the range's transaction: a hook that
    fails leaves the index (and the hook's own writes) at the previous cursor."""
    busy_history(ledger)
    seen: list[str] = []

    def failing(conn: Any, events: Any) -> None:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS hook_probe (n INTEGER)"))
        conn.execute(sa.text("INSERT INTO hook_probe VALUES (1)"))
        raise RuntimeError("the service's write failed")

    broken = make_indexer(ledger, db_url, on_events=failing)
    with pytest.raises(RuntimeError):
        broken.sync_once()
    assert broken.cursor() in (None, Cursor(ledger.deploy_block - 1, None))
    with broken.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("hook_probe") or (
            conn.execute(sa.text("SELECT count(*) FROM hook_probe")).scalar_one() == 0
        )
    broken.close()

    def record(conn: Any, events: Any) -> None:
        seen.extend(e.name for e in events)

    indexer = make_indexer(ledger, db_url, on_events=record, batch_size=3)
    result = indexer.sync_once()
    assert len(seen) == result.events == len(chain_logs(ledger))
    assert seen.count("ConsentRevoked") == 1
    assert indexer.sync_once().events == 0 and len(seen) == result.events
    indexer.close()
