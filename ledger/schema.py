"""Alembic migrations for one component's tables (the indexer's here, the service's in ``api``).

Each component owns one ``MetaData`` and one migration environment inside its package, with
its own version table, so that several components can share a database and still migrate
apart. :class:`Migrations` runs them programmatically (no ``alembic.ini``): start-up calls
:meth:`Migrations.upgrade`, which brings a database at any older revision (or one created by
``create_all`` before migrations existed: the early revisions create only what is missing) to
head, after a copy of a SQLite file taken with SQLite's online backup API.
"""

from __future__ import annotations

import io
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from ledger.errors import LedgerError

#: Alembic keeps its running environment in module globals (``alembic.context``): one run at
#: a time per process (the service migrates while its indexer thread starts, for one).
_RUN_LOCK = threading.Lock()

#: The PostgreSQL advisory lock every migration run holds for its transaction.
_LOCK_KEY = 0x44534D49  # "DSMI"


class MigrationError(LedgerError):
    """A database could not be brought to (or is not at) the schema this code expects."""


@dataclass(frozen=True)
class Migrations:
    """One component's migration environment: where its scripts are and what they build."""

    script_location: Path
    version_table: str
    metadata: sa.MetaData

    def config(self, connection: Connection | None = None, output: Any = None) -> Config:
        cfg = Config(output_buffer=output) if output is not None else Config()
        cfg.set_main_option("script_location", str(self.script_location))
        cfg.attributes["migrations"] = self
        cfg.attributes["connection"] = connection
        return cfg

    def head(self) -> str:
        head = ScriptDirectory.from_config(self.config()).get_current_head()
        if head is None:
            raise MigrationError(f"no migration scripts in {self.script_location}")
        return head

    def current(self, engine: Engine) -> str | None:
        """The database's revision (None: never migrated)."""
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": self.version_table})
            return ctx.get_current_revision()

    def is_current(self, engine: Engine) -> bool:
        """Whether the database is at head (False also when it cannot be read)."""
        try:
            return self.current(engine) == self.head()
        except sa.exc.SQLAlchemyError:
            return False

    def upgrade(
        self, engine: Engine, revision: str = "head", backup_dir: Path | None = None
    ) -> Path | None:
        """Upgrade to ``revision``; a SQLite file behind it is backed up first (path returned)."""
        try:
            old = self.current(engine)
            target = self.head() if revision == "head" else revision
            behind = old != target and self._has_tables(engine)
        except sa.exc.SQLAlchemyError as exc:
            raise MigrationError(f"reading {self.version_table}: {exc}") from exc
        backup = None
        if behind:
            label = self.version_table.removesuffix("_alembic_version")
            backup = backup_sqlite(engine, old or "base", label, backup_dir)
        self._run(engine, lambda cfg: command.upgrade(cfg, revision))
        return backup

    def downgrade(self, engine: Engine, revision: str) -> None:
        self._run(engine, lambda cfg: command.downgrade(cfg, revision))

    def sql(self, dialect_url: str, revision: str = "head", start: str | None = None) -> str:
        """The SQL an upgrade would run (offline mode), for review before running it."""
        out = io.StringIO()
        cfg = self.config(output=out)
        cfg.set_main_option("sqlalchemy.url", dialect_url)
        span = f"{start}:{revision}" if start else revision
        with _RUN_LOCK:
            command.upgrade(cfg, span, sql=True)
        return out.getvalue()

    def _run(self, engine: Engine, op: Any) -> None:
        try:
            with _RUN_LOCK, engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Replicas starting together: one migrates, the others wait, then no-op.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                op(self.config(conn))
        except (sa.exc.SQLAlchemyError, CommandError) as exc:
            raise MigrationError(f"migrating {self.version_table}: {exc}") from exc

    def _has_tables(self, engine: Engine) -> bool:
        present = set(sa.inspect(engine).get_table_names())
        return bool(present & set(self.metadata.tables))


def backup_sqlite(
    engine: Engine, revision: str, label: str, backup_dir: Path | None = None
) -> Path | None:
    """Copy a SQLite database file (online backup API) next to it, named with its revision."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    source = Path(url.database)
    target_dir = backup_dir or source.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{source.name}.{label}-{revision}.bak"
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


def run_env() -> None:
    """The body of every ``env.py``: online with the caller's connection, or offline SQL."""
    from alembic import context

    config = context.config
    migrations: Migrations = config.attributes["migrations"]
    tables = set(migrations.metadata.tables)

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return type_ != "table" or name in tables

    opts: dict[str, Any] = {
        "target_metadata": migrations.metadata,
        "version_table": migrations.version_table,
        "include_name": include_name,
        "compare_type": True,
    }
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        batch = url is not None and url.startswith("sqlite")
        context.configure(url=url, literal_binds=True, render_as_batch=batch, **opts)
        with context.begin_transaction():
            context.run_migrations()
        return
    batch = connection.dialect.name == "sqlite"
    context.configure(connection=connection, render_as_batch=batch, **opts)
    with context.begin_transaction():
        context.run_migrations()
