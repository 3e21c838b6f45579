"""SQL tables of the chain indexer (SQLModel), in their own MetaData.

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

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

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


class IndexerBase(SQLModel, registry=registry()):
    """Base of the indexer's tables; its metadata is :data:`INDEXER_METADATA`."""


INDEXER_METADATA: sa.MetaData = IndexerBase.metadata


# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" auto-increments.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _coords_args(table: str) -> tuple[Any, ...]:
    return (sa.UniqueConstraint("block_number", "log_index", name=f"uq_{table}_block_log"),)


class EventCoords(IndexerBase):
    """Where a row's log sits on the chain: the proof a trace cites."""

    block_number: int = Field(sa_type=sa.BigInteger, index=True)
    block_hash: str = Field(max_length=66)
    block_timestamp: int = Field(sa_type=sa.BigInteger, index=True)
    tx_hash: str = Field(max_length=66, index=True)
    log_index: int = Field(sa_type=sa.Integer)


# Bookkeeping -------------------------------------------------------------------------


class IndexerCursor(IndexerBase, table=True):
    """The single row saying which chain, ledger and block the tables reflect."""

    __tablename__ = "indexer_cursor"

    id: int = Field(default=1, primary_key=True)
    chain_id: int = Field(sa_type=sa.BigInteger)
    genesis_hash: str = Field(max_length=66)
    ledger_address: str = Field(max_length=42)
    start_block: int = Field(sa_type=sa.BigInteger)
    last_block: int = Field(sa_type=sa.BigInteger)
    last_block_hash: str | None = Field(default=None, max_length=66)
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class IndexedBlock(IndexerBase, table=True):
    """Recent block hashes (within the re-org window) used to find a common ancestor."""

    __tablename__ = "indexed_blocks"

    number: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    hash: str = Field(max_length=66)
    parent_hash: str = Field(max_length=66)
    timestamp: int = Field(sa_type=sa.BigInteger)


class SkippedLog(EventCoords, table=True):
    """Logs from the ledger address that were not indexed (``on_unknown_event="skip"``)."""

    __tablename__ = "skipped_logs"
    __table_args__ = _coords_args("skipped_logs")

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID)
    address: str = Field(max_length=42)
    topic0: str | None = Field(default=None, max_length=66)
    topics: list[str] = Field(sa_type=sa.JSON)
    data: str = Field(sa_type=sa.Text)
    reason: str = Field(max_length=200)


# Membership --------------------------------------------------------------------------


class Member(IndexerBase, table=True):
    """Current state of a member, as the chain has it after the last indexed block."""

    __tablename__ = "members"

    address: str = Field(primary_key=True, max_length=42)
    roles: int = Field(sa_type=sa.Integer)
    kind: int = Field(sa_type=sa.Integer)
    kind_name: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    key_version: int = Field(sa_type=sa.BigInteger)
    enc_key_hash: str = Field(max_length=66)
    admitted_by: str = Field(max_length=42)
    admitted_at: int = Field(sa_type=sa.BigInteger)
    admitted_block: int = Field(sa_type=sa.BigInteger)
    updated_block: int = Field(sa_type=sa.BigInteger)


class MemberAgent(IndexerBase, table=True):
    """Current agents of enterprise members."""

    __tablename__ = "member_agents"

    enterprise: str = Field(primary_key=True, max_length=42)
    agent: str = Field(primary_key=True, max_length=42, index=True)
    expiry: int = Field(sa_type=sa.BigInteger)
    active: bool
    updated_block: int = Field(sa_type=sa.BigInteger)


class MemberEvent(EventCoords, table=True):
    """Every membership and governance event, in chain order."""

    __tablename__ = "member_events"
    __table_args__ = _coords_args("member_events")

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID)
    event: str = Field(max_length=40, index=True)
    account: str = Field(max_length=42, index=True)
    actor: str | None = Field(default=None, max_length=42)
    args: dict[str, Any] = Field(sa_type=sa.JSON)


# Schemas and assets ------------------------------------------------------------------


class SchemaRecord(EventCoords, table=True):
    """A registered schema (immutable once registered)."""

    __tablename__ = "schemas"
    __table_args__ = _coords_args("schemas")

    schema_id: str = Field(primary_key=True, max_length=66)
    issuer: str = Field(max_length=42, index=True)
    field_count: int = Field(sa_type=sa.Integer)
    fields_hash: str = Field(max_length=66)


class AssetRecord(EventCoords, table=True):
    """One asset version record (each version has its own asset id); coords are its anchoring."""

    __tablename__ = "assets"
    __table_args__ = _coords_args("assets")

    asset_id: str = Field(primary_key=True, max_length=66)
    version: int = Field(sa_type=sa.BigInteger)
    owner: str = Field(max_length=42, index=True)
    issuer: str = Field(max_length=42, index=True)
    schema_id: str = Field(max_length=66, index=True)
    root: str = Field(max_length=66)
    ciphertext_digest: str = Field(max_length=66)
    status: str = Field(max_length=16, index=True)
    previous: str | None = Field(default=None, max_length=66)
    next: str | None = Field(default=None, max_length=66)
    updated_block: int = Field(sa_type=sa.BigInteger)


class AssetEvent(EventCoords, table=True):
    """Every asset event; for AssetSuperseded, asset_id is the old version, related the new."""

    __tablename__ = "asset_events"
    __table_args__ = _coords_args("asset_events")

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID)
    event: str = Field(max_length=40, index=True)
    asset_id: str = Field(max_length=66, index=True)
    related_asset_id: str | None = Field(default=None, max_length=66, index=True)
    owner: str | None = Field(default=None, max_length=42, index=True)
    actor: str | None = Field(default=None, max_length=42)
    args: dict[str, Any] = Field(sa_type=sa.JSON)


# Consents ----------------------------------------------------------------------------


class GrantRecord(IndexerBase, table=True):
    """Current state of a grant: terms, uses, status; coords are its creation."""

    __tablename__ = "grants"

    grant_id: str = Field(primary_key=True, max_length=66)
    asset_id: str = Field(max_length=66, index=True)
    owner: str = Field(max_length=42, index=True)
    grantee: str = Field(max_length=42, index=True)
    grantor: str = Field(max_length=42)
    purpose: int = Field(sa_type=sa.BigInteger, index=True)
    fields_mask: int = Field(sa_type=Mask64)
    not_before: int = Field(sa_type=sa.BigInteger)
    expiry: int = Field(sa_type=sa.BigInteger)
    max_uses: int = Field(sa_type=sa.BigInteger)
    uses: int = Field(sa_type=sa.BigInteger)
    status: str = Field(max_length=16, index=True)
    nonce: str = Field(max_length=78)
    granted_at: int = Field(sa_type=sa.BigInteger)
    block_number: int = Field(sa_type=sa.BigInteger, index=True)
    block_hash: str = Field(max_length=66)
    block_timestamp: int = Field(sa_type=sa.BigInteger)
    tx_hash: str = Field(max_length=66)
    log_index: int = Field(sa_type=sa.Integer)
    updated_block: int = Field(sa_type=sa.BigInteger)


class GrantEvent(EventCoords, table=True):
    """ConsentGranted / ConsentRevoked / ConsentPaused / ConsentResumed, in chain order."""

    __tablename__ = "grant_events"
    __table_args__ = _coords_args("grant_events")

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID)
    event: str = Field(max_length=40, index=True)
    grant_id: str = Field(max_length=66, index=True)
    actor: str = Field(max_length=42)
    args: dict[str, Any] = Field(sa_type=sa.JSON)


class Access(EventCoords, table=True):
    """One recorded access (``Accessed``), with the grant's owner and asset denormalised."""

    __tablename__ = "accesses"
    __table_args__ = (
        *_coords_args("accesses"),
        sa.Index("ix_accesses_grantee_block", "grantee", "block_number"),
        sa.Index("ix_accesses_owner_block", "owner", "block_number"),
        sa.Index("ix_accesses_asset_block", "asset_id", "block_number"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID)
    grant_id: str = Field(max_length=66, index=True)
    grantee: str = Field(max_length=42)
    custodian: str = Field(max_length=42)
    owner: str = Field(max_length=42)
    asset_id: str = Field(max_length=66)
    fields_mask: int = Field(sa_type=Mask64)
    purpose: int = Field(sa_type=sa.BigInteger)
    use: int = Field(sa_type=sa.BigInteger)
    nonce: str = Field(max_length=78)


class AccessRefusal(EventCoords, table=True):
    """A request ``recordAccessBatch`` skipped (``AccessRefused``), with its reason code."""

    __tablename__ = "access_refusals"
    __table_args__ = _coords_args("access_refusals")

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID)
    grant_id: str = Field(max_length=66, index=True)
    grantee: str = Field(max_length=42, index=True)
    custodian: str = Field(max_length=42)
    reason: int = Field(sa_type=sa.Integer)
    nonce: str = Field(max_length=78)


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


def create_tables(engine: Engine) -> None:
    """Create the indexer's tables if missing (idempotent)."""
    INDEXER_METADATA.create_all(engine)
    create_trace_indexes(engine)


# Trace indexes -----------------------------------------------------------------------
# The regulator's trace and the subject's history (``ledger.trace``) sort by
# ``(block_timestamp, block_number, log_index)`` after an equality filter; each index
# below serves one filter together with that order, so a page is an index range scan.
# ``create_all`` only adds missing *tables*, so :func:`create_trace_indexes` adds them to
# databases created before they existed (idempotent: ``CREATE INDEX IF NOT EXISTS``).


def _trace_index(name: str, table: sa.Table, *lead: str) -> sa.Index:
    cols = [table.c[c] for c in (*lead, "block_timestamp", "block_number", "log_index")]
    return sa.Index(name, *cols)


_T_ACCESS: sa.Table = Access.__table__  # type: ignore[attr-defined]
_T_GRANT_EVENT: sa.Table = GrantEvent.__table__  # type: ignore[attr-defined]
_T_GRANT: sa.Table = GrantRecord.__table__  # type: ignore[attr-defined]

TRACE_INDEXES: tuple[sa.Index, ...] = (
    _trace_index("ix_trace_accesses_time", _T_ACCESS),
    _trace_index("ix_trace_accesses_owner", _T_ACCESS, "owner"),
    _trace_index("ix_trace_accesses_grantee", _T_ACCESS, "grantee"),
    _trace_index("ix_trace_accesses_asset", _T_ACCESS, "asset_id"),
    _trace_index("ix_trace_accesses_purpose", _T_ACCESS, "purpose"),
    _trace_index("ix_trace_grant_events_time", _T_GRANT_EVENT),
    sa.Index("ix_trace_grants_expiry", _T_GRANT.c.expiry),
)


def create_trace_indexes(engine: Engine) -> None:
    """Create the trace indexes that an existing database lacks (idempotent)."""
    with engine.begin() as conn:
        for index in TRACE_INDEXES:
            index.create(conn, checkfirst=True)
