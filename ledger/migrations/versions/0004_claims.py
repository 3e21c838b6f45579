"""Claims (issue 17): the claims companion's events and the claims' current state (created
only where missing: a database made by ``create_all`` already has them).

Revision ID: l0004
Revises: l0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "l0004"
down_revision: str | None = "l0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("claim_id", sa.String(length=66), nullable=False),
        sa.Column("subject", sa.String(length=42), nullable=False),
        sa.Column("department", sa.String(length=42), nullable=False),
        sa.Column("schema_id", sa.String(length=66), nullable=False),
        sa.Column("reference_hash", sa.String(length=66), nullable=False),
        sa.Column("relayer", sa.String(length=42), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filed_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("asset_id", sa.String(length=66), nullable=True),
        sa.Column("reason_code", sa.Integer(), nullable=True),
        sa.Column("reason_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("closed_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("claim_id"),
        if_not_exists=True,
    )
    for column in ("subject", "department", "status", "filed_at", "block_number"):
        op.create_index(f"ix_claims_{column}", "claims", [column], if_not_exists=True)
    op.create_index(
        "ix_claims_department_status",
        "claims",
        ["department", "status", "filed_at"],
        if_not_exists=True,
    )
    op.create_table(
        "claim_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("claim_id", sa.String(length=66), nullable=False),
        sa.Column("actor", sa.String(length=42), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_claim_events_block_log"),
        if_not_exists=True,
    )
    for column in ("event", "claim_id", "block_number", "block_timestamp", "tx_hash"):
        op.create_index(f"ix_claim_events_{column}", "claim_events", [column], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("claim_events")
    op.drop_table("claims")
