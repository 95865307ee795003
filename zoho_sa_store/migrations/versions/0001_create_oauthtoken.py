"""Create the oauthtoken table.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from zoho_sa_store.column_types import key_text

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauthtoken",
        sa.Column("id", key_text(), nullable=False),
        sa.Column("user_name", key_text(), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("client_secret", sa.String(255), nullable=True),
        sa.Column("refresh_token", key_text(), nullable=True),
        sa.Column("access_token", key_text(), nullable=True),
        sa.Column("grant_token", key_text(), nullable=True),
        sa.Column("expiry_time", sa.BigInteger(), nullable=True),
        sa.Column("redirect_url", sa.String(255), nullable=True),
        sa.Column("api_domain", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauthtoken")),
        mysql_charset="utf8mb4",
    )
    for column in ("user_name", "refresh_token", "access_token", "grant_token"):
        op.create_index(
            op.f(f"ix_oauthtoken_{column}"), "oauthtoken", [column], unique=True
        )


def downgrade() -> None:
    op.drop_table("oauthtoken")
