"""Write the release fixtures of tests/api/test_migrations.py (run once; output committed).

The release is commit ab49cbb: this script takes that commit's table definitions
(``git show ab49cbb:api/db.py`` etc.), builds its schema with ``create_all`` as that release
did, fills every table with two rows, and dumps DDL and rows as SQL, for SQLite
(``sqlite3`` ``iterdump``) and for PostgreSQL (``pg_dump --inserts``):

    tests/api/fixtures/release_ab49cbb.sqlite.sql
    tests/api/fixtures/release_ab49cbb.postgresql.sql

    .venv/bin/python scripts/gen_migration_fixtures.py [--pg-url postgresql+psycopg://...]

ab49cbb's ``ledger/db.py`` is SQLModel: install ``sqlmodel`` into the venv to re-run this
(the product no longer depends on it).
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import types
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

RELEASE = "ab49cbb"
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "api" / "fixtures"


def _source(path: str) -> str:
    return subprocess.run(
        ["git", "show", f"{RELEASE}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def release_metadata() -> tuple[sa.MetaData, sa.MetaData]:
    """(service metadata incl. webhook tables, indexer metadata) exactly as at the release."""
    api_ns: dict[str, Any] = {"__name__": "release_api_db"}
    exec(compile(_source("api/db.py"), "release:api/db.py", "exec"), api_ns)
    api_md: sa.MetaData = api_ns["metadata"]
    hooks = _source("api/webhooks.py")
    tables = hooks[hooks.index("webhooks = sa.Table(") : hooks.index("class WebhookSettings")]
    exec(tables, {"sa": sa, "metadata": api_md})
    # A real module (SQLModel resolves annotations through sys.modules).
    ledger_mod = types.ModuleType("release_ledger_db")
    sys.modules[ledger_mod.__name__] = ledger_mod
    code = compile(_source("ledger/db.py"), "release:ledger/db.py", "exec")
    exec(code, ledger_mod.__dict__)
    return api_md, ledger_mod.INDEXER_METADATA


def _value(column: sa.Column[Any], i: int) -> Any:
    t = column.type
    name = type(t).__name__
    if name == "Mask64":
        return (1 << 63) | (i + 5)  # the sign bit: stored negative, read back unsigned
    if isinstance(t, sa.Boolean):
        return i % 2 == 0
    if isinstance(t, sa.Integer):
        if column.primary_key:
            return i + 1
        big = isinstance(t, sa.BigInteger) or isinstance(getattr(t, "impl", None), sa.BigInteger)
        return (1 << 40) + i if big else 1000 + i
    if isinstance(t, sa.Float):
        return 1.5 + i
    if isinstance(t, sa.LargeBinary):
        return bytes([i + 1]) * 32
    if isinstance(t, sa.JSON):
        return {"row": i, "list": [1, "two", None], "nested": {"k": True}}
    if isinstance(t, sa.DateTime):
        return datetime(2026, 1, 2, 3, 4, 5 + i, tzinfo=UTC)
    length = getattr(t, "length", None) or 200
    return f"{column.table.name}.{column.name}#{i}"[-length:]


def fill(engine: sa.Engine, metadata: sa.MetaData) -> None:
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if table.name == "api_schema_version":
                conn.execute(table.insert().values(version=1))  # what the release's migrate wrote
                continue
            # A single-row table (its key has a default: the indexer cursor) gets one row; a
            # surrogate key is left to the database (its sequence advances, as in use).
            single = any(c.default is not None for c in table.primary_key.columns)
            auto = table.autoincrement_column
            rows = [
                {c.name: _value(c, i) for c in table.columns if c is not auto}
                for i in range(1 if single else 2)
            ]
            conn.execute(table.insert(), rows)


def build(url: str, api_md: sa.MetaData, ledger_md: sa.MetaData) -> None:
    engine = sa.create_engine(url)
    for md in (api_md, ledger_md):
        md.create_all(engine)
        fill(engine, md)
    engine.dispose()


def sqlite_fixture(api_md: sa.MetaData, ledger_md: sa.MetaData) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "release.db"
        build(f"sqlite:///{path}", api_md, ledger_md)
        con = sqlite3.connect(path)
        try:
            return "\n".join(con.iterdump()) + "\n"
        finally:
            con.close()


def pg_fixture(admin_url: str, api_md: sa.MetaData, ledger_md: sa.MetaData) -> str:
    name = f"release_fixture_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(admin_url).set(database=name)
    try:
        build(url.render_as_string(hide_password=False), api_md, ledger_md)
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        dump = subprocess.run(
            ["pg_dump", "--inserts", "--no-owner", "--no-privileges", "--no-comments", dsn],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    # Keep what a plain psycopg execute runs on any recent server: no psql meta-commands.
    lines = [ln for ln in dump.splitlines() if not ln.startswith("\\")]
    lines = [ln for ln in lines if "transaction_timeout" not in ln]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    api_md, ledger_md = release_metadata()
    OUT.mkdir(parents=True, exist_ok=True)
    header = f"-- The schema and rows of release {RELEASE} (scripts/gen_migration_fixtures.py).\n"
    (OUT / f"release_{RELEASE}.sqlite.sql").write_text(header + sqlite_fixture(api_md, ledger_md))
    (OUT / f"release_{RELEASE}.postgresql.sql").write_text(
        header + pg_fixture(args.pg_url, api_md, ledger_md)
    )
    print(f"wrote {OUT}/release_{RELEASE}.{{sqlite,postgresql}}.sql", file=sys.stderr)


if __name__ == "__main__":
    main()
