"""SQL tables of the chain indexer (SQLAlchemy Core), in their own MetaData.

Every event row carries the block number, block hash, block timestamp, transaction
hash and log index of the log it came from, so that any answer built on these
tables (the regulator's trace in particular) can cite the on-chain proof, and a
``(block_number, log_index)`` unique constraint per table makes re-runs idempotent.

Conventions: addresses are lowercase ``0x`` hex (42 chars), bytes32 values
lowercase ``0x`` hex (66 chars), integers that fit in 63 bits are ``BIGINT``,
``uint256`` nonces are decimal strings, and 64-bit field masks are stored as
signed 64-bit two's complement (see :class:`Mask64`) so bitwise SQL still works.
``args`` columns keep every decoded event argument as JSON, exactly.

The tables live in :data:`INDEXER_METADATA`, separate from the vault's and the
API's, so each component creates and migrates only its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.schema import Migrations

_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


class Mask64(sa.types.TypeDecorator[int]):
    """An unsigned 64-bit bit mask stored as a signed BIGINT (two's complement).

    Bit 63 maps to the sign bit; ``mask & bit`` in SQL keeps its meaning, and values
    read through SQLAlchemy come back unsigned.
    """

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: sa.Dialect) -> int | None:
        if value is None:
            return None
        if not 0 <= value < _U64:
            raise ValueError(f"mask {value} out of uint64 range")
        return value - _U64 if value > _I64_MAX else value

    def process_result_value(self, value: int | None, dialect: sa.Dialect) -> int | None:
        if value is None:
            return None
        return value + _U64 if value < 0 else value


def saturate_i64(value: int) -> int:
    """uint64 times (e.g. an agent expiry of ``type(uint64).max``, "never") capped to BIGINT."""
    return min(value, _I64_MAX)


INDEXER_METADATA = sa.MetaData()
"""The indexer's tables (and only those): :mod:`ledger.migrations` builds them from it."""

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" auto-increments.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _coords(table: str) -> tuple[sa.Column[Any] | sa.UniqueConstraint, ...]:
    """Where a row's log sits on the chain (the proof a trace cites); unique per table."""
    return (
        sa.Column("block_number", sa.BigInteger, nullable=False, index=True),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger, nullable=False, index=True),
        sa.Column("tx_hash", sa.String(66), nullable=False, index=True),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.UniqueConstraint("block_number", "log_index", name=f"uq_{table}_block_log"),
    )


indexer_cursor = sa.Table(
    "indexer_cursor",
    INDEXER_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, default=1),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("genesis_hash", sa.String(66), nullable=False),
    sa.Column("ledger_address", sa.String(42), nullable=False),
    sa.Column("start_block", sa.BigInteger, nullable=False),
    sa.Column("last_block", sa.BigInteger, nullable=False),
    sa.Column("last_block_hash", sa.String(66)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

indexed_blocks = sa.Table(
    "indexed_blocks",
    INDEXER_METADATA,
    sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(66), nullable=False),
    sa.Column("parent_hash", sa.String(66), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
)

skipped_logs = sa.Table(
    "skipped_logs",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("address", sa.String(42), nullable=False),
    sa.Column("topic0", sa.String(66)),
    sa.Column("topics", sa.JSON, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    *_coords("skipped_logs"),
)

members = sa.Table(
    "members",
    INDEXER_METADATA,
    sa.Column("address", sa.String(42), primary_key=True),
    sa.Column("roles", sa.Integer, nullable=False),
    sa.Column("kind", sa.Integer, nullable=False),
    sa.Column("kind_name", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("key_version", sa.BigInteger, nullable=False),
    sa.Column("enc_key_hash", sa.String(66), nullable=False),
    sa.Column("admitted_by", sa.String(42), nullable=False),
    sa.Column("admitted_at", sa.BigInteger, nullable=False),
    sa.Column("admitted_block", sa.BigInteger, nullable=False),
    sa.Column("updated_block", sa.BigInteger, nullable=False),
)

member_agents = sa.Table(
    "member_agents",
    INDEXER_METADATA,
    sa.Column("enterprise", sa.String(42), primary_key=True),
    sa.Column("agent", sa.String(42), primary_key=True, index=True),
    sa.Column("expiry", sa.BigInteger, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_block", sa.BigInteger, nullable=False),
)

member_events = sa.Table(
    "member_events",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("event", sa.String(40), nullable=False, index=True),
    sa.Column("account", sa.String(42), nullable=False, index=True),
    sa.Column("actor", sa.String(42)),
    sa.Column("args", sa.JSON, nullable=False),
    *_coords("member_events"),
)

schemas = sa.Table(
    "schemas",
    INDEXER_METADATA,
    sa.Column("schema_id", sa.String(66), primary_key=True),
    sa.Column("issuer", sa.String(42), nullable=False, index=True),
    sa.Column("field_count", sa.Integer, nullable=False),
    sa.Column("fields_hash", sa.String(66), nullable=False),
    *_coords("schemas"),
)

assets = sa.Table(
    "assets",
    INDEXER_METADATA,
    sa.Column("asset_id", sa.String(66), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(42), nullable=False, index=True),
    sa.Column("issuer", sa.String(42), nullable=False, index=True),
    sa.Column("schema_id", sa.String(66), nullable=False, index=True),
    sa.Column("root", sa.String(66), nullable=False),
    sa.Column("ciphertext_digest", sa.String(66), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("previous", sa.String(66)),
    sa.Column("next", sa.String(66)),
    sa.Column("updated_block", sa.BigInteger, nullable=False),
    *_coords("assets"),
)

asset_events = sa.Table(
    "asset_events",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("event", sa.String(40), nullable=False, index=True),
    sa.Column("asset_id", sa.String(66), nullable=False, index=True),
    sa.Column("related_asset_id", sa.String(66), index=True),
    sa.Column("owner", sa.String(42), index=True),
    sa.Column("actor", sa.String(42)),
    sa.Column("args", sa.JSON, nullable=False),
    *_coords("asset_events"),
)

grants = sa.Table(
    "grants",
    INDEXER_METADATA,
    sa.Column("grant_id", sa.String(66), primary_key=True),
    sa.Column("asset_id", sa.String(66), nullable=False, index=True),
    sa.Column("owner", sa.String(42), nullable=False, index=True),
    sa.Column("grantee", sa.String(42), nullable=False, index=True),
    sa.Column("grantor", sa.String(42), nullable=False),
    sa.Column("purpose", sa.BigInteger, nullable=False, index=True),
    sa.Column("fields_mask", Mask64(), nullable=False),
    sa.Column("not_before", sa.BigInteger, nullable=False),
    sa.Column("expiry", sa.BigInteger, nullable=False),
    sa.Column("max_uses", sa.BigInteger, nullable=False),
    sa.Column("uses", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("nonce", sa.String(78), nullable=False),
    sa.Column("granted_at", sa.BigInteger, nullable=False),
    # The lifecycle (ILifecycle): signed retention, when it was revoked, when the grantee's
    # acknowledgements were mined (None: not acknowledged).
    sa.Column("retention", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("revoked_at", sa.BigInteger),
    sa.Column("recall_acked_at", sa.BigInteger),
    sa.Column("deletion_acked_at", sa.BigInteger),
    #: Orders the recall rows one supersession yields (ledger.trace.recall_rank of the id).
    sa.Column("trace_rank", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("block_number", sa.BigInteger, nullable=False, index=True),
    sa.Column("block_hash", sa.String(66), nullable=False),
    sa.Column("block_timestamp", sa.BigInteger, nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=False),
    sa.Column("log_index", sa.Integer, nullable=False),
    sa.Column("updated_block", sa.BigInteger, nullable=False),
)

grant_events = sa.Table(
    "grant_events",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("event", sa.String(40), nullable=False, index=True),
    sa.Column("grant_id", sa.String(66), nullable=False, index=True),
    sa.Column("actor", sa.String(42), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    *_coords("grant_events"),
)

#: Sealed accesses (the ``DataSafeSealed`` companion): one row per AccessSealed,
#: SealExtended or AccessUnsealed log; ``actor`` is the department, regulator or revealer.
sealed_events = sa.Table(
    "sealed_events",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("event", sa.String(40), nullable=False, index=True),
    sa.Column("seal_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("subject", sa.String(42), nullable=False, index=True),
    sa.Column("actor", sa.String(42), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    *_coords("sealed_events"),
)

accesses = sa.Table(
    "accesses",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("grant_id", sa.String(66), nullable=False, index=True),
    sa.Column("grantee", sa.String(42), nullable=False),
    sa.Column("custodian", sa.String(42), nullable=False),
    sa.Column("owner", sa.String(42), nullable=False),
    sa.Column("asset_id", sa.String(66), nullable=False),
    sa.Column("fields_mask", Mask64(), nullable=False),
    sa.Column("purpose", sa.BigInteger, nullable=False),
    sa.Column("use", sa.BigInteger, nullable=False),
    sa.Column("nonce", sa.String(78), nullable=False),
    *_coords("accesses"),
    sa.Index("ix_accesses_owner_block", "owner", "block_number"),
    sa.Index("ix_accesses_asset_block", "asset_id", "block_number"),
    sa.Index("ix_accesses_grantee_block", "grantee", "block_number"),
)

access_refusals = sa.Table(
    "access_refusals",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("grant_id", sa.String(66), nullable=False, index=True),
    sa.Column("grantee", sa.String(42), nullable=False, index=True),
    sa.Column("custodian", sa.String(42), nullable=False),
    sa.Column("reason", sa.Integer, nullable=False),
    sa.Column("nonce", sa.String(78), nullable=False),
    *_coords("access_refusals"),
)

acknowledgement_refusals = sa.Table(
    "acknowledgement_refusals",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("grant_id", sa.String(66), nullable=False, index=True),
    #: Whoever signed; empty if no signature was recovered.
    sa.Column("signer", sa.String(42), nullable=False, index=True),
    #: 1 = recall, 2 = deletion (ledger.models.AckKind); other values as relayed.
    sa.Column("kind", sa.Integer, nullable=False),
    sa.Column("reason", sa.Integer, nullable=False),
    *_coords("acknowledgement_refusals"),
)

# Claims (the DataSafeClaims companion): one row per claim, its state re-derived from
# claim_events (ClaimFiled / ClaimFulfilled / ClaimRefused) after a re-org, like grants.
claims = sa.Table(
    "claims",
    INDEXER_METADATA,
    sa.Column("claim_id", sa.String(66), primary_key=True),
    sa.Column("subject", sa.String(42), nullable=False, index=True),
    sa.Column("department", sa.String(42), nullable=False, index=True),
    sa.Column("schema_id", sa.String(66), nullable=False),
    sa.Column("reference_hash", sa.String(66), nullable=False),
    sa.Column("relayer", sa.String(42), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("filed_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("closed_at", sa.BigInteger),
    sa.Column("asset_id", sa.String(66)),
    sa.Column("reason_code", sa.Integer),
    sa.Column("reason_hash", sa.String(66)),
    sa.Column("block_number", sa.BigInteger, nullable=False, index=True),
    sa.Column("log_index", sa.Integer, nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=False),
    sa.Column("closed_tx_hash", sa.String(66)),
    sa.Column("updated_block", sa.BigInteger, nullable=False),
    sa.Index("ix_claims_department_status", "department", "status", "filed_at"),
)

claim_events = sa.Table(
    "claim_events",
    INDEXER_METADATA,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("event", sa.String(40), nullable=False, index=True),
    sa.Column("claim_id", sa.String(66), nullable=False, index=True),
    sa.Column("actor", sa.String(42), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    *_coords("claim_events"),
)

# Engine ------------------------------------------------------------------------------


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL: readers (the API) do not block the indexer's writes; NORMAL is crash-safe
    # against a killed process in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Deleted rows are overwritten with zeros, not left in free pages (crypto-shredding).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the indexer's database (SQLite file or PostgreSQL URL)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


# Trace indexes -----------------------------------------------------------------------
# The regulator's trace and the subject's history (``ledger.trace``) sort by
# ``(block_timestamp, block_number, log_index)`` after an equality filter; each index
# below serves one filter together with that order, so a page is an index range scan.
# The baseline migration creates them where missing (``IF NOT EXISTS``), so a database made
# by ``create_all`` before they existed gains them on its first upgrade.


def _trace_index(name: str, table: sa.Table, *lead: str) -> sa.Index:
    cols = [table.c[c] for c in (*lead, "block_timestamp", "block_number", "log_index")]
    return sa.Index(name, *cols)


TRACE_INDEXES: tuple[sa.Index, ...] = (
    _trace_index("ix_trace_accesses_time", accesses),
    _trace_index("ix_trace_accesses_owner", accesses, "owner"),
    _trace_index("ix_trace_accesses_grantee", accesses, "grantee"),
    _trace_index("ix_trace_accesses_asset", accesses, "asset_id"),
    _trace_index("ix_trace_accesses_purpose", accesses, "purpose"),
    _trace_index("ix_trace_grant_events_time", grant_events),
    sa.Index("ix_trace_grants_expiry", grants.c.expiry),
)


#: The indexer's migrations (``ledger/migrations``), versioned in ``indexer_alembic_version``.
MIGRATIONS = Migrations(
    script_location=Path(__file__).resolve().parent / "migrations",
    version_table="indexer_alembic_version",
    metadata=INDEXER_METADATA,
)


def create_tables(engine: Engine, backup_dir: Path | None = None) -> Path | None:
    """Upgrade the indexer's tables to head (idempotent; a SQLite file behind is backed up
    first, and that copy's path returned)."""
    return MIGRATIONS.upgrade(engine, backup_dir=backup_dir)
