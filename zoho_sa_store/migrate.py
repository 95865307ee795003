"""Running the Alembic migrations that create and evolve the token table."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from . import adopt
from .engine import DatabaseURL, build_engine, resolve_url, safe_url
from .errors import database_error
from .transaction import write_transaction

log = logging.getLogger(__name__)

# The migrations ship inside the package, so ``upgrade`` works from a plain
# ``pip install`` as well as from a checkout.
SCRIPT_LOCATION = "zoho_sa_store:migrations"

# A table of our own, so that an application that keeps its own Alembic
# history in the same database is not disturbed.
VERSION_TABLE = "zoho_sa_store_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic configuration for this package's migrations."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision of the migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """Return the revision a database is at, or None before the first one."""
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    )
    return context.get_current_revision()


def upgrade(
    url: DatabaseURL | None = None, revision: str = "head"
) -> adopt.Adoption | None:
    """Bring the token table's schema to ``revision``, the newest by default.

    ``url`` is a database URL, a ``sqlalchemy.engine.URL`` or an ``Engine``;
    when it is None, ``ZOHO_TOKEN_STORE_URL`` is read.

    A table ``oauthtoken`` with no recorded revision is taken for one the
    SDK's ``DBStore`` created: it is adopted in place (see ``adopt``), stamped
    at the revision adoption produces, and upgraded from there, in one
    transaction except on MySQL and MariaDB, where every ALTER TABLE commits
    on its own (running ``upgrade`` again finishes an interrupted adoption).
    Returns what the adoption did, or None when there was
    nothing to adopt.
    """
    engine = build_engine(resolve_url(url))
    adoption = None
    try:
        with write_transaction(engine) as connection:
            config = alembic_config(connection)
            if current_revision(connection) is None and adopt.has_token_table(
                connection
            ):
                adoption = adopt.adopt(connection)
                command.stamp(config, adopt.ADOPTED_REVISION)
            command.upgrade(config, revision)
    except SQLAlchemyError as err:
        where = safe_url(engine)
        raise database_error("upgrade the token table", where, err) from err
    finally:
        if engine is not url:
            engine.dispose()
    log.info("Upgraded the token table at %s to %s", safe_url(engine), revision)
    return adoption


def downgrade(url: DatabaseURL | None = None, revision: str = "base") -> None:
    """Take the token table's schema back to ``revision``; ``base`` drops it."""
    engine = build_engine(resolve_url(url))
    try:
        with write_transaction(engine) as connection:
            command.downgrade(alembic_config(connection), revision)
    except SQLAlchemyError as err:
        where = safe_url(engine)
        raise database_error("downgrade the token table", where, err) from err
    finally:
        if engine is not url:
            engine.dispose()
    log.info("Downgraded the token table at %s to %s", safe_url(engine), revision)
