"""Alembic environment for the token table.

The database comes from, in order: a connection handed over by
``zoho_sa_store.migrate``; ``alembic -x url=URL``; ``sqlalchemy.url`` in
alembic.ini; the ``ZOHO_TOKEN_STORE_URL`` environment variable.
"""

from alembic import context

from zoho_sa_store.engine import build_engine, resolve_url
from zoho_sa_store.migrate import VERSION_TABLE
from zoho_sa_store.model import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url") or None
    engine = build_engine(resolve_url(url))
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        "Offline (--sql) mode is not supported: run the migrations against a "
        "database with `zoho-sa-store upgrade --url URL`."
    )
run_online()
