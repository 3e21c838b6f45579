"""Issue 17: the grant lifecycle (retention, revocation time, acknowledgement times, refusals).

Revision ID: l0003
Revises: l0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "l0003"
down_revision: str | None = "l0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Only what is missing, like l0001: a database built by ``create_all`` already has it all.
    offline = context.is_offline_mode()  # ``migrate --sql``: no database to inspect
    have = (
        set() if offline else {c["name"] for c in sa.inspect(op.get_bind()).get_columns("grants")}
    )
    columns = [
        sa.Column("retention", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("recall_acked_at", sa.BigInteger(), nullable=True),
        sa.Column("deletion_acked_at", sa.BigInteger(), nullable=True),
        sa.Column("trace_rank", sa.BigInteger(), nullable=False, server_default="0"),
    ]
    missing = [c for c in columns if c.name not in have]
    if missing:
        with op.batch_alter_table("grants") as batch:
            for column in missing:
                batch.add_column(column)
    op.create_table(
        "acknowledgement_refusals",
        sa.Column("id", _ID, nullable=False),
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("signer", sa.String(length=42), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "block_number", "log_index", name="uq_acknowledgement_refusals_block_log"
        ),
        if_not_exists=True,
    )
    for name in ("grant_id", "signer", "block_number", "block_timestamp", "tx_hash"):
        op.create_index(
            f"ix_acknowledgement_refusals_{name}",
            "acknowledgement_refusals",
            [name],
            if_not_exists=True,
        )


def downgrade() -> None:
    op.drop_table("acknowledgement_refusals")
    with op.batch_alter_table("grants") as batch:
        for column in (
            "trace_rank",
            "deletion_acked_at",
            "recall_acked_at",
            "revoked_at",
            "retention",
        ):
            batch.drop_column(column)
