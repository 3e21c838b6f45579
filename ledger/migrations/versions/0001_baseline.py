"""The indexer's tables as released at ab49cbb (created only where missing: create_all databases).

Revision ID: l0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "l0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_refusals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("grantee", sa.String(length=42), nullable=False),
        sa.Column("custodian", sa.String(length=42), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_access_refusals_block_log"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_access_refusals_block_number", "access_refusals", ["block_number"], if_not_exists=True
    )
    op.create_index(
        "ix_access_refusals_block_timestamp",
        "access_refusals",
        ["block_timestamp"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_access_refusals_grant_id", "access_refusals", ["grant_id"], if_not_exists=True
    )
    op.create_index(
        "ix_access_refusals_grantee", "access_refusals", ["grantee"], if_not_exists=True
    )
    op.create_index(
        "ix_access_refusals_tx_hash", "access_refusals", ["tx_hash"], if_not_exists=True
    )

    op.create_table(
        "accesses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("grantee", sa.String(length=42), nullable=False),
        sa.Column("custodian", sa.String(length=42), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("fields_mask", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.BigInteger(), nullable=False),
        sa.Column("use", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.String(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_accesses_block_log"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_accesses_asset_block", "accesses", ["asset_id", "block_number"], if_not_exists=True
    )
    op.create_index("ix_accesses_block_number", "accesses", ["block_number"], if_not_exists=True)
    op.create_index(
        "ix_accesses_block_timestamp", "accesses", ["block_timestamp"], if_not_exists=True
    )
    op.create_index("ix_accesses_grant_id", "accesses", ["grant_id"], if_not_exists=True)
    op.create_index(
        "ix_accesses_grantee_block", "accesses", ["grantee", "block_number"], if_not_exists=True
    )
    op.create_index(
        "ix_accesses_owner_block", "accesses", ["owner", "block_number"], if_not_exists=True
    )
    op.create_index("ix_accesses_tx_hash", "accesses", ["tx_hash"], if_not_exists=True)
    op.create_index(
        "ix_trace_accesses_asset",
        "accesses",
        ["asset_id", "block_timestamp", "block_number", "log_index"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_trace_accesses_grantee",
        "accesses",
        ["grantee", "block_timestamp", "block_number", "log_index"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_trace_accesses_owner",
        "accesses",
        ["owner", "block_timestamp", "block_number", "log_index"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_trace_accesses_purpose",
        "accesses",
        ["purpose", "block_timestamp", "block_number", "log_index"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_trace_accesses_time",
        "accesses",
        ["block_timestamp", "block_number", "log_index"],
        if_not_exists=True,
    )

    op.create_table(
        "asset_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("related_asset_id", sa.String(length=66), nullable=True),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("actor", sa.String(length=42), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_asset_events_block_log"),
        if_not_exists=True,
    )
    op.create_index("ix_asset_events_asset_id", "asset_events", ["asset_id"], if_not_exists=True)
    op.create_index(
        "ix_asset_events_block_number", "asset_events", ["block_number"], if_not_exists=True
    )
    op.create_index(
        "ix_asset_events_block_timestamp", "asset_events", ["block_timestamp"], if_not_exists=True
    )
    op.create_index("ix_asset_events_event", "asset_events", ["event"], if_not_exists=True)
    op.create_index("ix_asset_events_owner", "asset_events", ["owner"], if_not_exists=True)
    op.create_index(
        "ix_asset_events_related_asset_id", "asset_events", ["related_asset_id"], if_not_exists=True
    )
    op.create_index("ix_asset_events_tx_hash", "asset_events", ["tx_hash"], if_not_exists=True)

    op.create_table(
        "assets",
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("issuer", sa.String(length=42), nullable=False),
        sa.Column("schema_id", sa.String(length=66), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("ciphertext_digest", sa.String(length=66), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous", sa.String(length=66), nullable=True),
        sa.Column("next", sa.String(length=66), nullable=True),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_assets_block_log"),
        if_not_exists=True,
    )
    op.create_index("ix_assets_block_number", "assets", ["block_number"], if_not_exists=True)
    op.create_index("ix_assets_block_timestamp", "assets", ["block_timestamp"], if_not_exists=True)
    op.create_index("ix_assets_issuer", "assets", ["issuer"], if_not_exists=True)
    op.create_index("ix_assets_owner", "assets", ["owner"], if_not_exists=True)
    op.create_index("ix_assets_schema_id", "assets", ["schema_id"], if_not_exists=True)
    op.create_index("ix_assets_status", "assets", ["status"], if_not_exists=True)
    op.create_index("ix_assets_tx_hash", "assets", ["tx_hash"], if_not_exists=True)

    op.create_table(
        "grant_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("actor", sa.String(length=42), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_grant_events_block_log"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_grant_events_block_number", "grant_events", ["block_number"], if_not_exists=True
    )
    op.create_index(
        "ix_grant_events_block_timestamp", "grant_events", ["block_timestamp"], if_not_exists=True
    )
    op.create_index("ix_grant_events_event", "grant_events", ["event"], if_not_exists=True)
    op.create_index("ix_grant_events_grant_id", "grant_events", ["grant_id"], if_not_exists=True)
    op.create_index("ix_grant_events_tx_hash", "grant_events", ["tx_hash"], if_not_exists=True)
    op.create_index(
        "ix_trace_grant_events_time",
        "grant_events",
        ["block_timestamp", "block_number", "log_index"],
        if_not_exists=True,
    )

    op.create_table(
        "grants",
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("grantee", sa.String(length=42), nullable=False),
        sa.Column("grantor", sa.String(length=42), nullable=False),
        sa.Column("purpose", sa.BigInteger(), nullable=False),
        sa.Column("fields_mask", sa.BigInteger(), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("expiry", sa.BigInteger(), nullable=False),
        sa.Column("max_uses", sa.BigInteger(), nullable=False),
        sa.Column("uses", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=78), nullable=False),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id"),
        if_not_exists=True,
    )
    op.create_index("ix_grants_asset_id", "grants", ["asset_id"], if_not_exists=True)
    op.create_index("ix_grants_block_number", "grants", ["block_number"], if_not_exists=True)
    op.create_index("ix_grants_grantee", "grants", ["grantee"], if_not_exists=True)
    op.create_index("ix_grants_owner", "grants", ["owner"], if_not_exists=True)
    op.create_index("ix_grants_purpose", "grants", ["purpose"], if_not_exists=True)
    op.create_index("ix_grants_status", "grants", ["status"], if_not_exists=True)
    op.create_index("ix_trace_grants_expiry", "grants", ["expiry"], if_not_exists=True)

    op.create_table(
        "indexed_blocks",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
        if_not_exists=True,
    )
    op.create_table(
        "indexer_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("genesis_hash", sa.String(length=66), nullable=False),
        sa.Column("ledger_address", sa.String(length=42), nullable=False),
        sa.Column("start_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block_hash", sa.String(length=66), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_table(
        "member_agents",
        sa.Column("enterprise", sa.String(length=42), nullable=False),
        sa.Column("agent", sa.String(length=42), nullable=False),
        sa.Column("expiry", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("enterprise", "agent"),
        if_not_exists=True,
    )
    op.create_index("ix_member_agents_agent", "member_agents", ["agent"], if_not_exists=True)

    op.create_table(
        "member_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("actor", sa.String(length=42), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_member_events_block_log"),
        if_not_exists=True,
    )
    op.create_index("ix_member_events_account", "member_events", ["account"], if_not_exists=True)
    op.create_index(
        "ix_member_events_block_number", "member_events", ["block_number"], if_not_exists=True
    )
    op.create_index(
        "ix_member_events_block_timestamp", "member_events", ["block_timestamp"], if_not_exists=True
    )
    op.create_index("ix_member_events_event", "member_events", ["event"], if_not_exists=True)
    op.create_index("ix_member_events_tx_hash", "member_events", ["tx_hash"], if_not_exists=True)

    op.create_table(
        "members",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("roles", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("kind_name", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("key_version", sa.BigInteger(), nullable=False),
        sa.Column("enc_key_hash", sa.String(length=66), nullable=False),
        sa.Column("admitted_by", sa.String(length=42), nullable=False),
        sa.Column("admitted_at", sa.BigInteger(), nullable=False),
        sa.Column("admitted_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
        if_not_exists=True,
    )
    op.create_index("ix_members_status", "members", ["status"], if_not_exists=True)

    op.create_table(
        "schemas",
        sa.Column("schema_id", sa.String(length=66), nullable=False),
        sa.Column("issuer", sa.String(length=42), nullable=False),
        sa.Column("field_count", sa.Integer(), nullable=False),
        sa.Column("fields_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("schema_id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_schemas_block_log"),
        if_not_exists=True,
    )
    op.create_index("ix_schemas_block_number", "schemas", ["block_number"], if_not_exists=True)
    op.create_index(
        "ix_schemas_block_timestamp", "schemas", ["block_timestamp"], if_not_exists=True
    )
    op.create_index("ix_schemas_issuer", "schemas", ["issuer"], if_not_exists=True)
    op.create_index("ix_schemas_tx_hash", "schemas", ["tx_hash"], if_not_exists=True)

    op.create_table(
        "skipped_logs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("topic0", sa.String(length=66), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_skipped_logs_block_log"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_skipped_logs_block_number", "skipped_logs", ["block_number"], if_not_exists=True
    )
    op.create_index(
        "ix_skipped_logs_block_timestamp", "skipped_logs", ["block_timestamp"], if_not_exists=True
    )
    op.create_index("ix_skipped_logs_tx_hash", "skipped_logs", ["tx_hash"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("skipped_logs")
    op.drop_table("schemas")
    op.drop_table("members")
    op.drop_table("member_events")
    op.drop_table("member_agents")
    op.drop_table("indexer_cursor")
    op.drop_table("indexed_blocks")
    op.drop_table("grants")
    op.drop_table("grant_events")
    op.drop_table("assets")
    op.drop_table("asset_events")
    op.drop_table("accesses")
    op.drop_table("access_refusals")
