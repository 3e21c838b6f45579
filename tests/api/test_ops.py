"""api/ops.py: what the node asks of the service, on real SQLite databases and a real
(unreachable) PostgreSQL address."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from api.errors import DatabaseUnavailableError
from api.journal import ResubmitError
from api.ops import (
    blob_health,
    child_env,
    env_setting,
    recorded_state,
    redact_database_url,
    restore_journaled,
)
from api.settings import ApiSettings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_child_env_names_the_api_settings_and_the_api_reads_them_back(tmp_path: Path) -> None:
    env = child_env(
        rpc_url="http://127.0.0.1:1",
        blob_dir=tmp_path / "blobs",
        run_indexer=True,
        port=8701,
        confirmations=None,
    )
    assert env == {
        "DATASAFE_API_RPC_URL": "http://127.0.0.1:1",
        "DATASAFE_API_BLOB_DIR": str(tmp_path / "blobs"),
        "DATASAFE_API_RUN_INDEXER": "true",
        "DATASAFE_API_PORT": "8701",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        s = ApiSettings()
        assert (s.rpc_url, s.blob_dir, s.run_indexer, s.port) == (
            "http://127.0.0.1:1",
            tmp_path / "blobs",
            True,
            8701,
        )
        assert env_setting("port") == "8701"
        mp.setenv("DATASAFE_API_HOST", "")
        assert env_setting("host") is None


def test_unknown_setting_names_are_refused() -> None:
    with pytest.raises(ValueError, match="not an API setting"):
        child_env(rpc_ulr="http://x")
    with pytest.raises(ValueError, match="not an API setting"):
        env_setting("nope")


def test_redacted_url_hides_the_password() -> None:
    redacted = redact_database_url("postgresql+psycopg://u:secret@db:5432/x")
    assert "secret" not in redacted and "u:***@db" in redacted
    assert redact_database_url("not a url") == "not a url"


def test_an_empty_database_records_nothing_and_has_no_blob_findings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    state = recorded_state(url)
    assert (state.last_indexed, state.last_recorded, state.newest_txs) == (None, 0, [])
    assert blob_health(url) == {"ok": True, "missing": 0, "corrupt": 0, "last_run_at": None}


def test_recorded_state_reads_the_cursor_and_the_newest_transactions(tmp_path: Path) -> None:
    path = tmp_path / "rec.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE indexer_cursor (id INTEGER, last_block INTEGER, last_block_hash)")
        db.execute("INSERT INTO indexer_cursor VALUES (1, 7, '0xabc')")
        db.execute("CREATE TABLE api_grants (block INTEGER, tx_hash TEXT)")
        db.executemany(
            "INSERT INTO api_grants VALUES (?, ?)", [(b, f"0x{b:02x}") for b in range(1, 6)]
        )
    state = recorded_state(f"sqlite:///{path}", newest=2)
    assert (state.last_indexed, state.last_indexed_hash, state.last_recorded) == (7, "0xabc", 5)
    assert state.newest_txs == [("api_grants", "0x05"), ("api_grants", "0x04")]


def test_an_unreachable_database_is_a_typed_error() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"
    with pytest.raises(DatabaseUnavailableError, match="unreachable"):
        recorded_state(url)
    with pytest.raises(DatabaseUnavailableError):
        blob_health(url)


def test_restore_without_a_journal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResubmitError, match="no transaction journal"):
        restore_journaled(
            "http://127.0.0.1:1",
            f"sqlite:///{tmp_path / 'nojournal.db'}",
            ledger_address="0x" + "11" * 20,
            deploy_block=0,
            confirmations=0,
            rpc_timeout=1.0,
        )
