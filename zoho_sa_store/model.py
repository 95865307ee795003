"""The ``oauthtoken`` table: one row per stored OAuth token.

The column names are the ones the Zoho SDK's own stores use, so rows written by
the SDK's ``DBStore`` layout and by this package line up column for column.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .column_types import key_text

TABLE_NAME = "oauthtoken"
DIGEST_LENGTH = 64
KEY_ID_LENGTH = 16

# Constraint names are stable across databases, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OAuthTokenRow(Base):
    """A stored token.

    The user name is found by its own unique index; the refresh, access and
    grant tokens by the unique, indexed digests beside them (see
    ``encryption``), never by their values, which may be ciphertext.
    """

    __tablename__ = TABLE_NAME
    __table_args__ = {"mysql_charset": "utf8mb4"}

    id: Mapped[str] = mapped_column(key_text(), primary_key=True)
    user_name: Mapped[str | None] = mapped_column(key_text(), unique=True, index=True)
    client_id: Mapped[str | None] = mapped_column(String(255))
    # Text: a Fernet token is about 4/3 the length of its value plus 100.
    client_secret: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(Text)
    grant_token: Mapped[str | None] = mapped_column(Text)
    # Epoch milliseconds. The SDK hands it over and expects it back as a
    # string; a number lets the database compare expiries.
    expiry_time: Mapped[int | None] = mapped_column(BigInteger)
    redirect_url: Mapped[str | None] = mapped_column(String(255))
    api_domain: Mapped[str | None] = mapped_column(String(255))
    # Epoch milliseconds on the database's clock until which one caller holds
    # the right to refresh this token (see ``zoho_sa_store.refresh``).
    refresh_lease_until: Mapped[int | None] = mapped_column(BigInteger)
    # Hex SHA-256 or HMAC-SHA256 of each lookup token (64 characters).
    refresh_token_digest: Mapped[str | None] = mapped_column(
        key_text(DIGEST_LENGTH), unique=True, index=True
    )
    access_token_digest: Mapped[str | None] = mapped_column(
        key_text(DIGEST_LENGTH), unique=True, index=True
    )
    grant_token_digest: Mapped[str | None] = mapped_column(
        key_text(DIGEST_LENGTH), unique=True, index=True
    )
    # Which key last wrote the row; NULL for a row written without keys.
    key_id: Mapped[str | None] = mapped_column(key_text(KEY_ID_LENGTH))

    def __repr__(self) -> str:
        # Only what identifies the row: never a token or the client secret.
        return f"<OAuthTokenRow id={self.id!r} user_name={self.user_name!r}>"


oauthtoken = OAuthTokenRow.__table__
