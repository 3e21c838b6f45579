"""Grant proposals of enterprises with an M-of-N approval policy (issue 18).

A proposal is a grant an agent of a thresholded enterprise proposes; the other agents
approve it (each an EIP-712 ``GrantApproval`` signature) and the service relays
``grantWithApprovals`` once enough live agents have approved. The proposal's id is the grant
id it will have (``grantIdOf(owner, nonce)``).

Revision ID: a0003
Revises: a0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a0003"
down_revision: str | None = "a0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_grant_proposals",
        sa.Column("proposal_id", sa.String(length=66), nullable=False),
        sa.Column("enterprise", sa.String(length=42), nullable=False),
        sa.Column("asset_id", sa.String(length=66), nullable=False),
        sa.Column("proposer", sa.String(length=42), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("nonce", sa.String(length=80), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("key_package", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_api_grant_proposals_enterprise",
        "api_grant_proposals",
        ["enterprise", "created_at", "proposal_id"],
        if_not_exists=True,
    )
    op.create_table(
        "api_grant_approvals",
        sa.Column("proposal_id", sa.String(length=66), nullable=False),
        sa.Column("agent", sa.String(length=42), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["api_grant_proposals.proposal_id"]),
        sa.PrimaryKeyConstraint("proposal_id", "agent"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("api_grant_approvals")
    op.drop_index("ix_api_grant_proposals_enterprise", table_name="api_grant_proposals")
    op.drop_table("api_grant_proposals")
