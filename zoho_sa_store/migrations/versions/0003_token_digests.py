"""Find tokens by digest, and make room for encrypted values.

The refresh, access and grant tokens lose their unique indexes: the store
finds them by a digest column beside each (unique, indexed), so that the token
columns can hold Fernet ciphertext, which is longer than 255 characters, never
equal twice, and on MySQL could not be indexed as TEXT anyway. The client
secret and the three token columns become TEXT. ``key_id`` records which key
last wrote a row (NULL: not encrypted).

Existing rows get the plain SHA-256 digest of their tokens, which is what a
store without keys writes; a store with keys finds them by it too.

The downgrade restores revision 0002's schema. It refuses to run while any row
is encrypted: 0002 would read its ciphertext as tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from zoho_sa_store.column_types import key_text
from zoho_sa_store.errors import store_error

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TOKEN_COLUMNS = ("refresh_token", "access_token", "grant_token")
DIGEST_LENGTH = 64
KEY_ID_LENGTH = 16
BATCH_SIZE = 1000

# Frozen here rather than imported, so that later changes to the model do not
# change what this revision does.
_table = sa.table(
    "oauthtoken",
    sa.column("id", key_text()),
    *(sa.column(name, sa.Text()) for name in TOKEN_COLUMNS),
    *(sa.column(f"{name}_digest", key_text(DIGEST_LENGTH)) for name in TOKEN_COLUMNS),
    sa.column("key_id", key_text(KEY_ID_LENGTH)),
)


def upgrade() -> None:
    for name in TOKEN_COLUMNS:
        op.drop_index(op.f(f"ix_oauthtoken_{name}"), table_name="oauthtoken")
    with op.batch_alter_table("oauthtoken") as batch:
        batch.alter_column(
            "client_secret",
            existing_type=sa.String(255),
            type_=sa.Text(),
            existing_nullable=True,
        )
        for name in TOKEN_COLUMNS:
            batch.alter_column(
                name, existing_type=key_text(), type_=sa.Text(), existing_nullable=True
            )
        for name in TOKEN_COLUMNS:
            batch.add_column(
                sa.Column(f"{name}_digest", key_text(DIGEST_LENGTH), nullable=True)
            )
        batch.add_column(sa.Column("key_id", key_text(KEY_ID_LENGTH), nullable=True))
    _fill_plain_digests()
    for name in TOKEN_COLUMNS:
        op.create_index(
            op.f(f"ix_oauthtoken_{name}_digest"),
            "oauthtoken",
            [f"{name}_digest"],
            unique=True,
        )


def downgrade() -> None:
    _refuse_encrypted_rows()
    for name in TOKEN_COLUMNS:
        op.drop_index(op.f(f"ix_oauthtoken_{name}_digest"), table_name="oauthtoken")
    with op.batch_alter_table("oauthtoken") as batch:
        batch.drop_column("key_id")
        for name in TOKEN_COLUMNS:
            batch.drop_column(f"{name}_digest")
        for name in TOKEN_COLUMNS:
            batch.alter_column(
                name, existing_type=sa.Text(), type_=key_text(), existing_nullable=True
            )
        batch.alter_column(
            "client_secret",
            existing_type=sa.Text(),
            type_=sa.String(255),
            existing_nullable=True,
        )
    for name in TOKEN_COLUMNS:
        op.create_index(
            op.f(f"ix_oauthtoken_{name}"), "oauthtoken", [name], unique=True
        )


def _fill_plain_digests() -> None:
    # Page by primary key, so that a large table is never held in memory.
    connection = op.get_bind()
    last_id = None
    while True:
        query = sa.select(_table.c.id, *(_table.c[name] for name in TOKEN_COLUMNS))
        if last_id is not None:
            query = query.where(_table.c.id > last_id)
        rows = connection.execute(query.order_by(_table.c.id).limit(BATCH_SIZE)).all()
        if not rows:
            return
        for row in rows:
            digests = {
                f"{name}_digest": _sha256(getattr(row, name)) for name in TOKEN_COLUMNS
            }
            connection.execute(
                sa.update(_table).where(_table.c.id == row.id).values(digests)
            )
        last_id = rows[-1].id


def _sha256(value):
    return None if value is None else hashlib.sha256(value.encode("utf-8")).hexdigest()


def _refuse_encrypted_rows() -> None:
    count = op.get_bind().execute(
        sa.select(sa.func.count()).where(_table.c.key_id.is_not(None))
    )
    encrypted = count.scalar_one()
    if encrypted:
        raise store_error(
            f"Cannot downgrade the token table below revision 0003: {encrypted} "
            f"rows hold encrypted tokens, which revision 0002 cannot read. "
            f"Delete those rows first."
        )
