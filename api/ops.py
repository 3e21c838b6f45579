"""What the node (the composition root, ``node/``) asks of the service.

The node starts the API as a child process and checks the service's database before it
does; it does not know the service's tables or its ``DATASAFE_API_*`` settings. These
functions do: the settings a child process gets (:func:`child_env`), the ones the node's
own environment sets (:func:`env_setting`), what the database recorded as confirmed
(:func:`recorded_state`), the blob scrub's findings (:func:`blob_health`) and the restore
of a chain that lost journaled transactions (:func:`restore_journaled`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api import errors
from api.journal import ResubmitError, TxJournal, resubmit
from api.settings import ApiSettings
from ledger.indexer import Indexer, IndexerError
from ledger.rpc import RpcClient

_PREFIX = str(ApiSettings.model_config.get("env_prefix", "DATASAFE_API_"))


def _env_name(name: str) -> str:
    if name not in ApiSettings.model_fields:
        raise ValueError(f"{name!r} is not an API setting")
    return f"{_PREFIX}{name.upper()}"


def env_setting(name: str) -> str | None:
    """The API setting ``name`` as this process's environment sets it (None when unset/empty)."""
    value = os.environ.get(_env_name(name))
    return value if value else None


def service_paths(data_dir: Path) -> tuple[str, Path]:
    """(database URL, blob dir) the service uses with this data dir: what its own or the
    shared environment sets, else the places inside ``data_dir``."""
    settings = ApiSettings(data_dir=data_dir)
    return settings.database_url, settings.blob_dir


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def child_env(**settings: object) -> dict[str, str]:
    """Environment entries that give a child ``python -m api`` these settings (None: left out).

    Names are :class:`api.settings.ApiSettings` fields; an unknown name is a ``ValueError``.
    """
    return {_env_name(k): _env_value(v) for k, v in settings.items() if v is not None}


def upgrade_database(database_url: str, backup_dir: Path) -> Path | None:
    """Bring a database the node finds behind to this code's head revision, both the service's
    tables and the indexer's (a SQLite file is copied into ``backup_dir`` first, named with its
    old revision). Returns the copy, if one was made. A database that does not exist yet is
    left for the service to create."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite" and not (
        url.database and url.database != ":memory:" and Path(url.database).exists()
    ):
        return None
    from api import db as api_db
    from ledger import db as ledger_db

    engine = api_db.make_engine(database_url)
    try:
        copies = [
            migrations.upgrade(engine, backup_dir=backup_dir)
            for migrations in (api_db.MIGRATIONS, ledger_db.MIGRATIONS)
        ]
    finally:
        engine.dispose()
    return next((copy for copy in copies if copy is not None), None)


def redact_database_url(url: str) -> str:
    """The database URL without its password (for logs and status output)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


# ---- what the database recorded -----------------------------------------------------------

#: (table, block column, tx hash column) of rows the service stores only once confirmed.
_RECORDED = (
    ("api_schemas", "block", "tx_hash"),
    ("api_assets", "anchor_block", "anchor_tx"),
    ("api_grants", "block", "tx_hash"),
    ("api_member_keys", "updated_block", None),
)


@dataclass
class RecordedState:
    """What the service's database holds as confirmed on chain."""

    #: The indexer cursor (last indexed block and its hash), None before the first sync.
    last_indexed: int | None = None
    last_indexed_hash: str | None = None
    #: The highest block any confirmed row records (0: none).
    last_recorded: int = 0
    #: (table, tx hash) of the newest recorded transactions of each table.
    newest_txs: list[tuple[str, str]] = field(default_factory=list)


def recorded_state(database_url: str, *, newest: int = 3) -> RecordedState:
    """Read the indexer cursor, the highest recorded block and the newest recorded transactions.

    Tables that do not exist yet are skipped. ``DatabaseUnavailableError`` when the
    database cannot be inspected.
    """
    out = RecordedState()
    engine = sa.create_engine(database_url)
    try:
        try:
            tables = set(sa.inspect(engine).get_table_names())
        except sa.exc.SQLAlchemyError as exc:
            raise errors.DatabaseUnavailableError(
                f"database {redact_database_url(database_url)} unreachable: {exc}"
            ) from exc
        with engine.connect() as conn:
            if "indexer_cursor" in tables:
                row = conn.execute(
                    sa.text("SELECT last_block, last_block_hash FROM indexer_cursor WHERE id = 1")
                ).first()
                if row is not None and row[1]:
                    out.last_indexed, out.last_indexed_hash = int(row[0]), str(row[1])
            for table, block_col, tx_col in _RECORDED:
                if table not in tables:
                    continue
                top = conn.execute(sa.text(f"SELECT MAX({block_col}) FROM {table}")).scalar()  # noqa: S608
                if top is not None:
                    out.last_recorded = max(out.last_recorded, int(top))
                if tx_col is None:
                    continue
                rows = conn.execute(
                    sa.text(
                        f"SELECT {tx_col} FROM {table} WHERE {tx_col} IS NOT NULL "  # noqa: S608
                        f"ORDER BY {block_col} DESC LIMIT {int(newest)}"
                    )
                ).all()
                out.newest_txs.extend((table, str(tx_hash)) for (tx_hash,) in rows)
    finally:
        engine.dispose()
    return out


def blob_health(database_url: str) -> dict[str, Any]:
    """The scrub's findings as the database holds them (``api_scrub_*``; see api/scrub.py).

    ``DatabaseUnavailableError`` when the database cannot be read.
    """
    try:
        return _blob_health(database_url)
    except sa.exc.SQLAlchemyError as exc:
        raise errors.DatabaseUnavailableError(str(exc)) from exc


def _blob_health(database_url: str) -> dict[str, Any]:
    engine = sa.create_engine(database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        if "api_scrub_state" not in tables:
            return {"ok": True, "missing": 0, "corrupt": 0, "last_run_at": None}
        with engine.connect() as conn:
            counts = {
                str(p): int(n)
                for p, n in conn.execute(
                    sa.text("SELECT problem, COUNT(*) FROM api_scrub_findings GROUP BY problem")
                )
            }
            state = (
                conn.execute(
                    sa.text(
                        "SELECT last_run_at, last_full_pass_at, full_passes "
                        "FROM api_scrub_state WHERE id = 1"
                    )
                )
                .mappings()
                .first()
            )
    finally:
        engine.dispose()
    missing, corrupt = counts.get("missing", 0), counts.get("corrupt", 0)
    return {
        "ok": missing == 0 and corrupt == 0,
        "missing": missing,
        "corrupt": corrupt,
        "last_run_at": state["last_run_at"] if state else None,
        "last_full_pass_at": state["last_full_pass_at"] if state else None,
        "full_passes": int(state["full_passes"] or 0) if state else 0,
    }


# ---- restore after a lost chain ---------------------------------------------------------------


def restore_journaled(
    chain_url: str,
    database_url: str,
    *,
    ledger_address: str,
    deploy_block: int,
    confirmations: int,
    rpc_timeout: float,
) -> dict[str, Any]:
    """Re-submit what the service journaled and the chain lost, then re-index the tail.

    The API journals every raw transaction before broadcasting it; the same bytes give
    the same hashes (and grant ids) again. The index treats the lost tail like a re-org
    and rolls back to the last block both agree on before indexing the restored blocks.
    Anything that cannot be restored is a :class:`api.journal.ResubmitError`.
    """
    engine = sa.create_engine(database_url)
    try:
        if "api_tx_journal" not in set(sa.inspect(engine).get_table_names()):
            raise ResubmitError("no transaction journal to re-submit from")
        with RpcClient(chain_url, timeout=rpc_timeout) as rpc:
            report = resubmit(TxJournal(engine), rpc, timeout=max(10.0, rpc_timeout))
        indexer = Indexer(
            rpc_url=chain_url,
            ledger_address=ledger_address,
            engine=engine,
            start_block=deploy_block,
            confirmations=confirmations,
        )
        try:
            indexer.sync_once()
        except IndexerError as exc:
            raise ResubmitError(f"the index cannot follow the restored chain: {exc}") from exc
        finally:
            indexer.close()
    finally:
        engine.dispose()
    return report.as_dict()
