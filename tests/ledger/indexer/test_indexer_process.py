"""Indexer against a real anvil and real SQLite/PostgreSQL databases: the indexer as a process:
SIGKILL mid-batch and restart, the CLI's exit codes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from _indexer_world import (
    ROOT,
    Ledger,
    assert_index_matches_chain,
    busy_history,
    db_logs,
)

from ledger import db


def _indexer_process(ledger: Ledger, db_url: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATASAFE_INDEXER_RPC_URL": ledger.url,
        "DATASAFE_INDEXER_LEDGER_ADDRESS": ledger.address,
        "DATASAFE_INDEXER_START_BLOCK": str(ledger.deploy_block),
        "DATASAFE_INDEXER_DB_URL": db_url,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ledger.indexer", *extra],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_kill_9_mid_batch_then_restart_gives_exactly_the_chain(ledger: Ledger, db_url: str) -> None:
    grants = busy_history(ledger)
    for i in range(25):
        ledger.anchor(f"k{i}")
        if i % 5 == 0:
            ledger.access([grants[1]], 1000 + i)
    head = ledger.w3.eth.block_number
    engine = db.make_engine(db_url)
    db.create_tables(engine)
    proc = _indexer_process(ledger, db_url, "--batch-size", "1", "--poll-interval", "0.05")
    cursor_table = db.indexer_cursor
    try:
        # Wait until the indexer has committed a few ranges.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                last = conn.execute(sa.select(cursor_table.c.last_block)).scalar_one_or_none()
            if last is not None and last >= ledger.deploy_block + 5:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        # Freeze the indexer inside a range transaction, then kill it there.
        blocker = engine.connect()
        if engine.dialect.name == "postgresql":
            tx = blocker.begin()
            blocker.execute(sa.select(cursor_table).with_for_update())
            ledger.anchor("after-lock")  # there is always one more range to write
            head = ledger.w3.eth.block_number
            waiting = 0
            while time.monotonic() < deadline and not waiting:
                blocker.execute(sa.text("select pg_stat_clear_snapshot()"))
                waiting = blocker.execute(
                    sa.text(
                        "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                        "and query like 'UPDATE indexer_cursor%'"
                    )
                ).scalar_one()
            assert waiting == 1  # rows of the range written, cursor update blocked
        else:
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
            tx = None
            ledger.anchor("after-lock")  # there is always one more range to write
            head = ledger.w3.eth.block_number
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if tx is not None:
            tx.rollback()
        else:
            blocker.exec_driver_sql("ROLLBACK")
        blocker.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with engine.connect() as conn:
        killed_at = conn.execute(sa.select(cursor_table.c.last_block)).scalar_one()
    assert killed_at < head
    rows = db_logs(engine)
    assert len(rows) == len(set(rows))
    assert all(block <= killed_at for block, *_ in rows)  # nothing past the cursor survived
    restart = _indexer_process(ledger, db_url, "--once")
    _out, err = restart.communicate(timeout=120)
    assert restart.returncode == 0, err.decode()
    assert_index_matches_chain(ledger, engine)
    engine.dispose()


def test_cli_reports_typed_error_and_exit_code(ledger: Ledger, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_INDEXER_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.indexer",
            "--once",
            "--db-url",
            f"sqlite:///{tmp_path}/x.db",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert b"LEDGER_ADDRESS" in proc.stderr
