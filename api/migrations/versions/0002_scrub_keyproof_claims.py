"""Since ab49cbb: blob scrub tables, members' key proofs, webhook delivery claims.

The readiness version row (``api_schema_version``) gives way to this revision table. Each
step applies only where missing, so a database that ``create_all`` built at any commit
between ab49cbb and migrations reaches the same head.

Revision ID: a0002
Revises: a0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "a0002"
down_revision: str | None = "a0001"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    if context.is_offline_mode():  # --sql: the upgrade of a database at a0001
        return set()
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    op.create_table(
        "api_scrub_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cursor", sa.String(length=66), nullable=True),
        sa.Column("last_run_at", sa.BigInteger(), nullable=True),
        sa.Column("last_full_pass_at", sa.BigInteger(), nullable=True),
        sa.Column("full_passes", sa.BigInteger(), nullable=False),
        sa.Column("checked_total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    state = sa.table("api_scrub_state", sa.column("id"))
    offline = context.is_offline_mode()
    if offline or op.get_bind().execute(sa.select(state.c.id)).first() is None:
        op.execute(
            sa.text("INSERT INTO api_scrub_state (id, full_passes, checked_total) VALUES (1, 0, 0)")
        )
    op.create_table(
        "api_scrub_findings",
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("blob", sa.String(length=128), nullable=False),
        sa.Column("problem", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_api_scrub_findings_problem", "api_scrub_findings", ["problem"], if_not_exists=True
    )
    if "key_proof" not in _columns("api_member_keys"):
        with op.batch_alter_table("api_member_keys") as batch_op:
            batch_op.add_column(
                sa.Column("key_proof", sa.Text(), server_default="", nullable=False)
            )
    present = _columns("api_webhook_deliveries")
    missing = [
        c
        for c in (
            sa.Column("claimed_by", sa.String(length=100), nullable=True),
            sa.Column("claim_expires", sa.Float(), nullable=True),
        )
        if c.name not in present
    ]
    if missing:
        with op.batch_alter_table("api_webhook_deliveries") as batch_op:
            for column in missing:
                batch_op.add_column(column)
    op.drop_table("api_schema_version", if_exists=True)


def downgrade() -> None:
    op.create_table(
        "api_schema_version",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.execute(sa.text("INSERT INTO api_schema_version (version) VALUES (1)"))
    with op.batch_alter_table("api_webhook_deliveries") as batch_op:
        batch_op.drop_column("claim_expires")
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("api_member_keys") as batch_op:
        batch_op.drop_column("key_proof")
    op.drop_table("api_scrub_findings")
    op.drop_table("api_scrub_state")
