"""The service's own SQL tables (SQLAlchemy Core) and engine set-up.

Every table the service owns is defined here, on one ``MetaData``, with an ``api_`` prefix
so they coexist with the indexer's tables (``ledger.db``) in the same database. The schema
is built and changed only by the migrations in ``api/migrations`` (:func:`migrate`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.schema import Migrations

metadata = sa.MetaData()

#: One row per accepted signed request; the primary key is what stops replays.
request_nonces = sa.Table(
    "api_request_nonces",
    metadata,
    sa.Column("signer", sa.String(42), primary_key=True),
    sa.Column("nonce", sa.LargeBinary(32), primary_key=True),
    sa.Column("ts", sa.BigInteger, nullable=False, index=True),
)

#: Outbox of relayed transactions: a row is written before sending and settled after
#: the receipt, so a crash in between is finished or cleaned up on restart.
relays = sa.Table(
    "api_relays",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: Field lists of registered schemas (the chain keeps only their count and hash).
schemas = sa.Table(
    "api_schemas",
    metadata,
    sa.Column("schema_id", sa.String(66), primary_key=True),
    sa.Column("issuer", sa.String(42), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("fields_hash", sa.String(66), nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=True),
    sa.Column("block", sa.BigInteger, nullable=False),
)

#: Members' encryption public keys; served only while their hash matches the chain.
member_keys = sa.Table(
    "api_member_keys",
    metadata,
    sa.Column("address", sa.String(42), primary_key=True),
    sa.Column("key_version", sa.Integer, nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("key_hash", sa.String(66), nullable=False),
    # The member's proof of possession (base64), served with the key; its keccak256 is on chain.
    sa.Column("key_proof", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_block", sa.BigInteger, nullable=False),
)

#: Assets anchored through this service: the anchor coordinates a pull reports.
assets = sa.Table(
    "api_assets",
    metadata,
    sa.Column("asset_id", sa.String(66), primary_key=True),
    sa.Column("owner", sa.String(42), nullable=False, index=True),
    sa.Column("issuer", sa.String(42), nullable=False, index=True),
    sa.Column("schema_id", sa.String(66), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("root", sa.String(66), nullable=False),
    sa.Column("ciphertext_digest", sa.String(66), nullable=False),
    sa.Column("previous", sa.String(66), nullable=True),
    sa.Column("anchor_tx", sa.String(66), nullable=False),
    sa.Column("anchor_block", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

#: Grants relayed through this service, with the consent receipt's evidence.
grants = sa.Table(
    "api_grants",
    metadata,
    sa.Column("grant_id", sa.String(66), primary_key=True),
    sa.Column("asset_id", sa.String(66), nullable=False, index=True),
    sa.Column("owner", sa.String(42), nullable=False, index=True),
    sa.Column("grantor", sa.String(42), nullable=False),
    sa.Column("grantee", sa.String(42), nullable=False, index=True),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("nonce", sa.String(80), nullable=False),
    sa.Column("deadline", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.String(140), nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=False),
    sa.Column("block", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

#: Key packages of live grants (deleted on revocation: crypto-shredding).
key_packages = sa.Table(
    "api_key_packages",
    metadata,
    sa.Column("grant_id", sa.String(66), primary_key=True),
    sa.Column("package", sa.LargeBinary, nullable=False),
)

#: Grants proposed by an agent of an enterprise with an M-of-N policy, until they are relayed
#: (issue 18). The id is the grant id the proposal will have: grantIdOf(enterprise, nonce).
grant_proposals = sa.Table(
    "api_grant_proposals",
    metadata,
    sa.Column("proposal_id", sa.String(66), primary_key=True),
    sa.Column("enterprise", sa.String(42), nullable=False),
    sa.Column("asset_id", sa.String(66), nullable=False),
    sa.Column("proposer", sa.String(42), nullable=False),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("nonce", sa.String(80), nullable=False),
    sa.Column("deadline", sa.BigInteger, nullable=False),
    sa.Column("key_package", sa.LargeBinary, nullable=False),
    #: pending | granted
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_api_grant_proposals_enterprise", "enterprise", "created_at", "proposal_id"),
)

#: One agent's signed GrantApproval of a proposal (the primary key stops a second one).
grant_approvals = sa.Table(
    "api_grant_approvals",
    metadata,
    sa.Column(
        "proposal_id",
        sa.String(66),
        sa.ForeignKey("api_grant_proposals.proposal_id"),
        primary_key=True,
    ),
    sa.Column("agent", sa.String(42), primary_key=True),
    sa.Column("signature", sa.String(132), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

#: Where each asset's sealed bundle sits in the blob store.
sealed_assets = sa.Table(
    "api_sealed_assets",
    metadata,
    sa.Column("asset_id", sa.String(66), primary_key=True),
    sa.Column("owner", sa.String(42), nullable=False),
    sa.Column("blob", sa.String(128), nullable=False),
)

#: Every raw signed transaction the service broadcasts, journaled before it is sent, so
#: a chain that lost blocks (a SIGKILLed node's state file older than our records) can be
#: given the very same bytes again: same hash, same grant ids. ``block`` is set once mined.
tx_journal = sa.Table(
    "api_tx_journal",
    metadata,
    sa.Column("tx_hash", sa.String(66), primary_key=True),
    sa.Column("sender", sa.String(42), nullable=False),
    sa.Column("nonce", sa.BigInteger, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("block", sa.BigInteger, nullable=True, index=True),
    sa.Column("block_hash", sa.String(66), nullable=True),
    #: Whether it succeeded when mined (a reverted one need not succeed when re-mined).
    sa.Column("ok", sa.Boolean, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    #: Journal order (ns clock): the order to re-submit transactions never seen mined in.
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Index("ix_api_tx_journal_sender_nonce", "sender", "nonce"),
)

#: One row per custodian key: the next nonce it handed out (written with the journal entry;
#: replicas serialise on an advisory lock per key, ``api.journal.NonceSlot``).
nonce_locks = sa.Table(
    "api_nonce_locks",
    metadata,
    sa.Column("sender", sa.String(42), primary_key=True),
    sa.Column("next_nonce", sa.BigInteger, nullable=False),
)

#: The blob scrub's resumable cursor and run times (one row, ``id`` = 1).
scrub_state = sa.Table(
    "api_scrub_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    #: Last asset id checked in the current pass (None: the next pass starts from the top).
    sa.Column("cursor", sa.String(66), nullable=True),
    sa.Column("last_run_at", sa.BigInteger, nullable=True),
    sa.Column("last_full_pass_at", sa.BigInteger, nullable=True),
    sa.Column("full_passes", sa.BigInteger, nullable=False, default=0),
    sa.Column("checked_total", sa.BigInteger, nullable=False, default=0),
)

#: Blobs the scrub found missing or corrupt; a row goes when a later check finds it sound.
scrub_findings = sa.Table(
    "api_scrub_findings",
    metadata,
    sa.Column("asset_id", sa.String(66), primary_key=True),
    sa.Column("blob", sa.String(128), nullable=False),
    sa.Column("problem", sa.String(16), nullable=False, index=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("detected_at", sa.BigInteger, nullable=False),
)

#: Webhooks institutions registered (``api.webhooks``).
webhooks = sa.Table(
    "api_webhooks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("institution", sa.String(42), nullable=False, index=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(64), nullable=False),
    sa.Column("kinds", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    #: the trace key after which events are new for this webhook
    sa.Column("after_key", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

#: One row per (webhook, event): the delivery log and retry state.
webhook_deliveries = sa.Table(
    "api_webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("webhook_id", sa.String(36), nullable=False),
    sa.Column("event_key", sa.String(200), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    #: The dispatcher that holds this delivery (sending it now) and until when.
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("claim_expires", sa.Float, nullable=True),
    sa.UniqueConstraint("webhook_id", "event_key", name="uq_webhook_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Engine with SQLite tuned for concurrent readers (WAL) and a real pool for PostgreSQL."""
    if url.startswith("sqlite"):
        if ":memory:" not in url and url.rstrip("/") != "sqlite:":
            # As many pooled connections as worker threads may hold at once (anyio's default
            # limiter: 40): an overflow connection is opened (its pragmas run, its page cache
            # cold) and closed again for every query, which under a burst of pulls cost more
            # than the queries themselves.
            kwargs.setdefault("pool_size", 40)
            kwargs.setdefault("max_overflow", 10)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # Deleted content is overwritten with zeros (key packages: crypto-shredding).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    engine = sa.create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        ping_when_idle(engine)
    return engine


#: A pooled PostgreSQL connection checked in less than this long ago is handed out again
#: without a ping (HikariCP's ``aliveBypassWindowMs`` is 500 ms).
PING_AFTER_IDLE_SECONDS = 1.0


def ping_when_idle(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """The pool's pre-ping, only for connections idle ``idle_seconds`` or longer.

    ``pool_pre_ping`` costs a round trip on every checkout: under load, one or two per pull.
    A connection checked in a moment ago was alive a moment ago; one that sat idle (the
    server restarted, a proxy timed it out) is pinged and replaced if dead, as before. A
    connection that dies while busy fails its statement either way; SQLAlchemy then drops
    every pooled connection older than the failure.
    """

    @sa.event.listens_for(engine, "connect")
    def _fresh(_dbapi: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _used(_dbapi: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get("checked_in")
        if last is not None and time.monotonic() - last < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except Exception as exc:
            # The pool discards this connection and checks out another (a fresh one).
            raise sa.exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc


def read_connection(engine: Engine) -> sa.Connection:
    """A connection for reads that are one statement each: autocommit on PostgreSQL.

    One statement sees one snapshot either way; without the BEGIN and ROLLBACK around it a
    read is one round trip, and the connection keeps the statements psycopg prepared (a
    ROLLBACK makes it deallocate them all). SQLite's driver opens no transaction for a read.
    """
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


@contextlib.contextmanager
def single_statement(engine: Engine) -> Iterator[sa.Connection]:
    """A connection for a write that is one statement: committed when the block ends.

    On PostgreSQL the statement is its own transaction (autocommit: no BEGIN and COMMIT round
    trips, the same synchronous commit); on SQLite a transaction around it as usual.
    """
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            yield conn
        return
    with read_connection(engine) as conn:
        yield conn


#: The service's migrations (``api/migrations``), versioned in ``api_alembic_version``.
MIGRATIONS = Migrations(
    script_location=Path(__file__).resolve().parent / "migrations",
    version_table="api_alembic_version",
    metadata=metadata,
)


def migrate(engine: Engine, backup_dir: Path | None = None) -> Path | None:
    """Upgrade the service's tables to head (idempotent). A SQLite file found behind is
    copied first (online backup API, named with its old revision); that copy's path is
    returned. A database made by ``create_all`` before migrations existed is upgraded too."""
    return MIGRATIONS.upgrade(engine, backup_dir=backup_dir)


def upgrade(url: str, backup_dir: Path | None = None) -> Path | None:
    """Upgrade the database at ``url`` to head (what ``datasafe-node up`` calls at start-up)."""
    engine = make_engine(url)
    try:
        return migrate(engine, backup_dir)
    finally:
        engine.dispose()


def is_migrated(engine: Engine) -> bool:
    """Whether the database is at this code's head revision (readiness fails otherwise)."""
    return MIGRATIONS.is_current(engine)
