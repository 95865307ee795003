"""Add the refresh lease, so that one caller refreshes an expiring token.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "oauthtoken", sa.Column("refresh_lease_until", sa.BigInteger(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("oauthtoken") as batch:
        batch.drop_column("refresh_lease_until")
