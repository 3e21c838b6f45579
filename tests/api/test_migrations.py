"""Migrations: the release's database (ab49cbb) upgrades to head with every row, on SQLite and
PostgreSQL; a fresh database at head equals the tables' definitions; the newest revision
round-trips; the operator command (``python -m api migrate``) backs up and upgrades.

The release fixtures (DDL + rows) are written by ``scripts/gen_migration_fixtures.py`` from
the release's own table definitions.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from _api_server import live_server
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from api import db
from api.settings import ApiSettings
from ledger import db as ledger_db
from ledger.schema import MigrationError, Migrations

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
BOTH = (db.MIGRATIONS, ledger_db.MIGRATIONS)
#: What ab49cbb had that head no longer has.
DROPPED = {"api_schema_version"}


def load_release(url: str) -> None:
    """The release's schema and rows, as its own ``create_all`` and code left them."""
    engine = sa.create_engine(url)
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "postgresql"
    script = (FIXTURES / f"release_ab49cbb.{dialect}.sql").read_text()
    if dialect == "sqlite":
        con = sqlite3.connect(sa.make_url(url).database or "")
        con.executescript(script)
        con.close()
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql(script)
    engine.dispose()


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of ours present, read through head's table definitions."""
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names())
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for migrations in BOTH:
            for table in migrations.metadata.sorted_tables:
                if table.name not in present:
                    continue
                names = {c["name"] for c in inspector.get_columns(table.name)}
                cols = [c for c in table.columns if c.name in names]
                rows = conn.execute(sa.select(*cols)).mappings()
                out[table.name] = [dict(r) for r in rows]
    return out


def differences(engine: Engine, migrations: Migrations) -> list[Any]:
    tables = set(migrations.metadata.tables)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda n, t, _p: t != "table" or n in tables,
            },
        )
        return list(compare_metadata(ctx, migrations.metadata))


def at_head(engine: Engine) -> None:
    for migrations in BOTH:
        assert migrations.current(engine) == migrations.head()
        assert differences(engine, migrations) == []


def test_release_database_upgrades_to_head_with_every_row(db_url: str, tmp_path: Path) -> None:
    load_release(db_url)
    engine = db.make_engine(db_url)
    try:
        assert not db.is_migrated(engine)  # readiness refuses a database behind
        before = snapshot(engine)
        release_tables = set(sa.inspect(engine).get_table_names())
        assert release_tables >= DROPPED
        # The fixture holds rows in every table the release had.
        assert {t for t, rows in before.items() if rows} == set(before)
        assert set(before) == release_tables - DROPPED  # head defines every table it kept

        backup = db.migrate(engine)
        indexer_backup = ledger_db.create_tables(engine)

        at_head(engine)
        assert db.is_migrated(engine)
        after = snapshot(engine)
        assert not set(sa.inspect(engine).get_table_names()) & DROPPED
        for table, rows in before.items():
            if table in DROPPED:
                continue
            assert len(after[table]) == len(rows), table
            for row in rows:  # every old column of every row, value for value
                assert any(all(new[k] == v for k, v in row.items()) for new in after[table]), (
                    table,
                    row,
                )
        # What head added: defaults on the old rows, a fresh scrub state.
        assert {r["key_proof"] for r in after["api_member_keys"]} == {""}
        assert {r["claimed_by"] for r in after["api_webhook_deliveries"]} == {None}
        assert [r["id"] for r in after["api_scrub_state"]] == [1]
        # The unsigned mask (bit 63 set) reads back unsigned.
        assert all(r["fields_mask"] >= 1 << 63 for r in after["grants"])
        # A surrogate key's sequence carried on: a new row gets a fresh id.
        with engine.begin() as conn:
            row = dict(after["accesses"][0], log_index=99)
            row.pop("id")
            new_id = conn.execute(
                ledger_db.accesses.insert().values(**row).returning(ledger_db.accesses.c.id)
            ).scalar_one()
        assert new_id not in {r["id"] for r in after["accesses"]}

        if engine.dialect.name == "sqlite":
            # A copy of the file as it was, named with its (absent) revision, next to it.
            assert backup is not None and backup.name == "datasafe.db.api-base.bak"
            assert backup.parent == tmp_path
            assert indexer_backup is not None and "indexer-base" in indexer_backup.name
            old = sa.create_engine(f"sqlite:///{backup}")
            with old.connect() as conn:
                names = set(sa.inspect(conn).get_table_names())
                grants = conn.execute(sa.text("SELECT COUNT(*) FROM api_grants")).scalar_one()
            old.dispose()
            assert "api_schema_version" in names and "api_alembic_version" not in names
            assert grants == len(before["api_grants"])
        else:
            assert backup is None and indexer_backup is None

        assert db.migrate(engine) is None  # at head: nothing to do, no copy
    finally:
        engine.dispose()


def test_fresh_database_upgrades_to_the_table_definitions(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        assert db.migrate(engine) is None  # nothing to back up
        assert ledger_db.create_tables(engine) is None
        at_head(engine)
        # Each component versions its own tables in its own table.
        names = set(sa.inspect(engine).get_table_names())
        assert {"api_alembic_version", "indexer_alembic_version"} <= names
        assert names == set(db.metadata.tables) | set(ledger_db.INDEXER_METADATA.tables) | {
            "api_alembic_version",
            "indexer_alembic_version",
        }
    finally:
        engine.dispose()


def test_newest_revision_downgrades_and_upgrades(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        db.migrate(engine)
        with engine.begin() as conn:
            conn.execute(
                db.member_keys.insert().values(
                    address="0x" + "a" * 40,
                    key_version=1,
                    public_key="pk",
                    key_hash="0x" + "b" * 64,
                    key_proof="proof",
                    updated_block=7,
                )
            )
        head = db.MIGRATIONS.head()
        db.MIGRATIONS.downgrade(engine, "-1")  # a0003 (grant proposals) off
        assert db.MIGRATIONS.current(engine) == "a0002"
        tables = set(sa.inspect(engine).get_table_names())
        assert not {"api_grant_proposals", "api_grant_approvals"} & tables
        db.MIGRATIONS.downgrade(engine, "-1")
        assert db.MIGRATIONS.current(engine) == "a0001"
        inspector = sa.inspect(engine)
        assert "key_proof" not in {c["name"] for c in inspector.get_columns("api_member_keys")}
        assert "api_scrub_state" not in inspector.get_table_names()
        with engine.connect() as conn:  # what the release's readiness check reads
            assert conn.execute(sa.text("SELECT version FROM api_schema_version")).scalar() == 1
        assert not db.is_migrated(engine)

        db.MIGRATIONS.upgrade(engine)
        assert db.MIGRATIONS.current(engine) == head
        assert differences(engine, db.MIGRATIONS) == []
        with engine.connect() as conn:
            keys = conn.execute(sa.select(db.member_keys)).mappings().all()
        assert [(k["updated_block"], k["key_proof"]) for k in keys] == [(7, "")]
    finally:
        engine.dispose()


def test_unknown_revision_is_a_typed_error(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        db.migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE api_alembic_version SET version_num = 'zz999'"))
        with pytest.raises(MigrationError, match="api_alembic_version"):
            db.migrate(engine)
        assert not db.is_migrated(engine)
    finally:
        engine.dispose()


def _api(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATASAFE_API_DATABASE_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_operator_command_upgrades_backs_up_and_dry_runs(tmp_path: Path) -> None:
    path = tmp_path / "svc.db"
    url = f"sqlite:///{path}"
    dry = _api(["migrate", "--sql"], url)
    assert dry.returncode == 0, dry.stderr
    assert "CREATE TABLE IF NOT EXISTS api_grants" in dry.stdout
    assert "ALTER TABLE api_member_keys ADD COLUMN key_proof" in dry.stdout
    assert "CREATE TABLE IF NOT EXISTS accesses" in dry.stdout
    assert not path.exists()  # a dry run touches no database

    load_release(url)
    done = _api(["migrate", "--json", "--backup-dir", str(tmp_path / "bk")], url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["api"]["from"] is None and report["api"]["to"] == db.MIGRATIONS.head()
    assert report["indexer"]["to"] == ledger_db.MIGRATIONS.head()
    assert Path(report["api"]["backup"]).parent == tmp_path / "bk"
    assert Path(report["api"]["backup"]).is_file()
    again = json.loads(_api(["migrate", "--json"], url).stdout)
    assert again["api"]["from"] == again["api"]["to"] and again["api"]["backup"] is None

    with sqlite3.connect(path) as con:
        con.execute("UPDATE api_alembic_version SET version_num = 'zz999'")
    failed = _api(["migrate"], url)
    assert failed.returncode == 1 and "migrate failed" in failed.stderr


def test_service_start_up_upgrades_a_release_database(
    bare_settings: ApiSettings, db_url: str, tmp_path: Path
) -> None:
    """What ``datasafe-node up`` gets: the service finds the release's database and upgrades."""
    load_release(db_url)
    with live_server(bare_settings) as srv, httpx.Client(base_url=srv.url, timeout=60) as h:
        body = h.get("/readyz").json()
        assert body["checks"]["database"]["ok"] is True, body
    engine = db.make_engine(db_url)
    try:
        assert db.MIGRATIONS.current(engine) == db.MIGRATIONS.head()
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(db.grants)).scalar() == 2
    finally:
        engine.dispose()
    copies = sorted(p.name for p in tmp_path.glob("*.bak"))
    if db_url.startswith("sqlite"):
        assert copies == ["datasafe.db.api-base.bak"]
    else:
        assert copies == []


def test_node_upgrades_a_database_it_finds_behind(tmp_path: Path) -> None:
    """``datasafe-node up`` calls ``api.ops.upgrade_database`` before anything reads the
    database: both sets of tables reach head, the old file is kept; a missing file is left
    for the service to create."""
    from api.ops import upgrade_database

    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    assert upgrade_database(missing, tmp_path) is None
    assert not (tmp_path / "absent.db").exists()
    url = f"sqlite:///{tmp_path / 'node.db'}"
    load_release(url)
    copy = upgrade_database(url, tmp_path / "backups")
    assert copy is not None and copy.is_file() and copy.parent == tmp_path / "backups"
    engine = db.make_engine(url)
    try:
        at_head(engine)
    finally:
        engine.dispose()
    assert upgrade_database(url, tmp_path / "backups") is None  # at head: nothing to copy


def test_upgrade_by_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    load_release(url)
    copy = db.upgrade(url, tmp_path / "backups")
    assert copy == tmp_path / "backups" / "node.db.api-base.bak" and copy.is_file()
    assert db.upgrade(url, tmp_path / "backups") is None  # at head: nothing to copy
    engine = db.make_engine(url)
    try:
        assert db.is_migrated(engine)
    finally:
        engine.dispose()
