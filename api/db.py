"""The service's own SQL tables (request nonces, relay outbox) and engine set-up.

Tables live in their own ``MetaData`` with an ``api_`` prefix so they coexist
with the vault store's and the indexer's tables in the same database.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

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

#: One row per custodian key: the row every replica locks (``SELECT ... FOR UPDATE``) while
#: it allocates a nonce and broadcasts, and the next nonce it handed out.
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

#: The schema version this code expects; readiness fails on a mismatch.
SCHEMA_VERSION = 1
schema_version = sa.Table(
    "api_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Engine with SQLite tuned for concurrent readers (WAL) and a real pool for PostgreSQL."""
    if url.startswith("sqlite"):
        if ":memory:" not in url and url.rstrip("/") != "sqlite:":
            # As many pooled connections as worker threads may hold at once: an overflow
            # connection is opened (and its pragmas run) and closed again for every query.
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", 20)
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
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def migrate(engine: Engine) -> None:
    """Create the service's tables (idempotent) and stamp the schema version."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        row = conn.execute(sa.select(schema_version.c.version)).first()
        if row is None:
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        if conn.execute(sa.select(scrub_state.c.id)).first() is None:
            conn.execute(scrub_state.insert().values(id=1, full_passes=0, checked_total=0))


def is_migrated(engine: Engine) -> bool:
    with engine.connect() as conn:
        try:
            row = conn.execute(sa.select(schema_version.c.version)).first()
        except sa.exc.ProgrammingError:
            return False
        except sa.exc.OperationalError as exc:
            if "no such table" in str(exc):
                return False
            raise
    return row is not None and row[0] == SCHEMA_VERSION
