"""Sealed accesses: the indexer's ``sealed_events`` table (issue 18).

Revision ID: l0002
Revises: l0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "l0002"
down_revision: str | None = "l0001"
branch_labels = None
depends_on = None

_TABLE = "sealed_events"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("seal_id", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(length=42), nullable=False),
        sa.Column("actor", sa.String(length=42), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_number", "log_index", name="uq_sealed_events_block_log"),
        if_not_exists=True,
    )
    for column in ("event", "seal_id", "subject", "block_number", "block_timestamp", "tx_hash"):
        op.create_index(f"ix_{_TABLE}_{column}", _TABLE, [column], if_not_exists=True)


def downgrade() -> None:
    op.drop_table(_TABLE)
