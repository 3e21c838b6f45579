"""The indexer lease changes hands while the old holder's last block range is committing.

The lease is a session advisory lock on its own connection; each range commits through
another one. When the holder is SIGKILLed, PostgreSQL ends both sessions independently:
the lease can be free while a COMMIT the dead process already sent is still running. The
new holder then reads the old cursor, indexes the same blocks and finds the cursor moved
under it (``ConcurrentIndexerError``; its range is rolled back, nothing is lost). It must
index on from the cursor that commit left, not stop indexing for good.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _api_server import live_server, world_settings
from _api_world import World
from _index_state import index_state

from api.journal import IndexerLease
from ledger import db
from ledger.indexer import Indexer


def _late_commit(engine: sa.Engine) -> tuple[threading.Event, threading.Event]:
    """Hold the COMMIT of the next range that advances the cursor: (blocked, go)."""
    blocked, go = threading.Event(), threading.Event()

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _advanced(conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE indexer_cursor"):
            conn.info["advanced"] = True

    @sa.event.listens_for(engine, "commit")
    def _hold(conn: Any) -> None:
        if conn.info.pop("advanced", False) and not go.is_set():
            blocked.set()
            assert go.wait(60)

    return blocked, go


def _lock_waiters(engine: sa.Engine) -> int:
    """Sessions of this database waiting for a lock (the new holder's range, on the old's)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _wait(what: str, until: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.postgres
def test_new_lease_holder_indexes_on_after_the_old_holders_late_commit(
    world: World, pg_databases: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    url = pg_databases.create("failover")
    engine = db.make_engine(url)
    old = Indexer(
        rpc_url=world.rpc_url,
        ledger_address=world.ledger_address,
        engine=engine,
        start_block=world.deploy_block,
    )
    lease = IndexerLease(engine)  # the old holder's lease: the service starts as a standby
    try:
        assert lease.acquire()
        old.sync_once()
        settings = world_settings(
            world, url, tmp_path, run_indexer=True, indexer_interval_seconds=0.1
        )
        with live_server(settings):
            world.w3.provider.make_request("anvil_mine", ["0x3"])  # type: ignore[arg-type]
            blocked, go = _late_commit(engine)
            dying = threading.Thread(target=old.sync_once)
            dying.start()
            try:
                assert blocked.wait(30)  # rows and cursor written, COMMIT not yet done
                lease.release()  # the old holder's lease session ends first
                _wait("the service never reached the range", lambda: _lock_waiters(engine) > 0)
            finally:
                go.set()  # ... then its COMMIT lands
                dying.join(30)
            world.w3.provider.make_request("anvil_mine", ["0x2"])  # type: ignore[arg-type]
            head = world.w3.eth.block_number

            def caught_up() -> bool:
                with engine.connect() as conn:
                    return index_state(conn)[0] == head

            _wait("the new lease holder stopped indexing", caught_up)
        # The race did happen: the new holder's first range found the cursor moved.
        assert "cursor moved from block" in capfd.readouterr().err
    finally:
        lease.release()
        old.close()
        engine.dispose()
