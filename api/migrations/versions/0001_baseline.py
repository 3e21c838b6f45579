"""The service's tables as released at ab49cbb (created only where missing: create_all databases).

Revision ID: a0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "a0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_assets",
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("issuer", sa.String(length=42), nullable=False),
        sa.Column("schema_id", sa.String(length=66), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("ciphertext_digest", sa.String(length=66), nullable=False),
        sa.Column("previous", sa.String(length=66), nullable=True),
        sa.Column("anchor_tx", sa.String(length=66), nullable=False),
        sa.Column("anchor_block", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id"),
        if_not_exists=True,
    )
    op.create_index("ix_api_assets_issuer", "api_assets", ["issuer"], if_not_exists=True)
    op.create_index("ix_api_assets_owner", "api_assets", ["owner"], if_not_exists=True)

    op.create_table(
        "api_grants",
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("grantor", sa.String(length=42), nullable=False),
        sa.Column("grantee", sa.String(length=42), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("nonce", sa.String(length=80), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=140), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id"),
        if_not_exists=True,
    )
    op.create_index("ix_api_grants_asset_id", "api_grants", ["asset_id"], if_not_exists=True)
    op.create_index("ix_api_grants_grantee", "api_grants", ["grantee"], if_not_exists=True)
    op.create_index("ix_api_grants_owner", "api_grants", ["owner"], if_not_exists=True)

    op.create_table(
        "api_key_packages",
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("package", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id"),
        if_not_exists=True,
    )
    op.create_table(
        "api_member_keys",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.String(length=66), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
        if_not_exists=True,
    )
    op.create_table(
        "api_nonce_locks",
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sender"),
        if_not_exists=True,
    )
    op.create_table(
        "api_relays",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_api_relays_status", "api_relays", ["status"], if_not_exists=True)

    op.create_table(
        "api_request_nonces",
        sa.Column("signer", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("signer", "nonce"),
        if_not_exists=True,
    )
    op.create_index("ix_api_request_nonces_ts", "api_request_nonces", ["ts"], if_not_exists=True)

    op.create_table(
        "api_schema_version",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
        if_not_exists=True,
    )
    # The release's readiness check wants this row (version 1).
    version = sa.table("api_schema_version", sa.column("version"))
    offline = context.is_offline_mode()  # --sql: the upgrade of an empty database
    if offline or op.get_bind().execute(sa.select(version.c.version)).first() is None:
        op.execute(sa.text("INSERT INTO api_schema_version (version) VALUES (1)"))
    op.create_table(
        "api_schemas",
        sa.Column("schema_id", sa.String(length=66), nullable=False),
        sa.Column("issuer", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("fields_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("schema_id"),
        if_not_exists=True,
    )
    op.create_index("ix_api_schemas_issuer", "api_schemas", ["issuer"], if_not_exists=True)

    op.create_table(
        "api_sealed_assets",
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("blob", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("asset_id"),
        if_not_exists=True,
    )
    op.create_table(
        "api_tx_journal",
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash"),
        if_not_exists=True,
    )
    op.create_index("ix_api_tx_journal_block", "api_tx_journal", ["block"], if_not_exists=True)
    op.create_index(
        "ix_api_tx_journal_sender_nonce", "api_tx_journal", ["sender", "nonce"], if_not_exists=True
    )

    op.create_table(
        "api_webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("webhook_id", "event_key", name="uq_webhook_event"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "api_webhook_deliveries",
        ["status", "next_attempt_at"],
        if_not_exists=True,
    )

    op.create_table(
        "api_webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("institution", sa.String(length=42), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("after_key", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_api_webhooks_institution", "api_webhooks", ["institution"], if_not_exists=True
    )


def downgrade() -> None:
    op.drop_table("api_webhooks")
    op.drop_table("api_webhook_deliveries")
    op.drop_table("api_tx_journal")
    op.drop_table("api_sealed_assets")
    op.drop_table("api_schemas")
    op.drop_table("api_schema_version")
    op.drop_table("api_request_nonces")
    op.drop_table("api_relays")
    op.drop_table("api_nonce_locks")
    op.drop_table("api_member_keys")
    op.drop_table("api_key_packages")
    op.drop_table("api_grants")
    op.drop_table("api_assets")
