"""The databases a benchmark runs on: URLs, setup, and bare driver connections."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from zoho_sa_store import upgrade
from zoho_sa_store.model import oauthtoken

from .data import Users, table_rows

# Databases of the benchmark's own: the ``test`` ones belong to test runs.
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/zoho_bench"
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/zoho_bench"

# The floor: one indexed lookup by user name, every column, as the store does.
RAW_FIND_SQL = {
    "sqlite": "SELECT * FROM oauthtoken WHERE user_name = ?",
    "postgresql": "SELECT * FROM oauthtoken WHERE user_name = %s",
    "mysql": "SELECT * FROM oauthtoken WHERE user_name = %s",
}


@dataclass(frozen=True)
class Database:
    """One database a benchmark runs on."""

    key: str  # "sqlite", "postgresql" or "mysql"
    label: str
    url: str


def server_databases() -> list[Database]:
    """Return PostgreSQL and MariaDB, at URLs the environment may override."""
    return [
        Database(
            "postgresql",
            "PostgreSQL",
            os.environ.get("ZOHO_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        ),
        Database(
            "mysql",
            "MariaDB",
            os.environ.get("ZOHO_BENCH_MYSQL_URL", DEFAULT_MYSQL_URL),
        ),
    ]


def sqlite_database(path: str) -> Database:
    """Return a SQLite database in the file at ``path``."""
    return Database("sqlite", "SQLite", f"sqlite:///{path}")


def ensure_database(database: Database) -> None:
    """Create the server database named in the URL when it is missing."""
    url = make_url(database.url)
    name = url.database
    if database.key == "sqlite" or not name:
        return
    if database.key == "postgresql":
        admin_url = url.set(database="postgres")
    else:
        admin_url = url.set(database=None)
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    quoted = engine.dialect.identifier_preparer.quote(name)
    try:
        with engine.connect() as connection:
            if database.key == "postgresql":
                exists = connection.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                    {"name": name},
                ).first()
                if exists is None:
                    connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
            else:
                connection.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {quoted}"))
    finally:
        engine.dispose()


def unreachable_reason(database: Database) -> str | None:
    """Return why a database cannot be used, or None when it can."""
    try:
        ensure_database(database)
        engine = sa.create_engine(database.url)
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as err:  # any failure means: skip this database
        return f"{type(err).__name__}: {err}".splitlines()[0]
    return None


def fill_table(database: Database, users: Users) -> None:
    """Make ``oauthtoken`` hold exactly ``users``, with fresh indexes."""
    upgrade(database.url)
    engine = sa.create_engine(database.url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.delete(oauthtoken))
        # A DELETE leaves the old rows' index entries and pages behind: a
        # 1k table emptied from 100k would still be searched like a 100k
        # one. Rebuilding it makes each size honest.
        _compact(engine, database.key)
        with engine.begin() as connection:
            connection.execute(sa.insert(oauthtoken), list(table_rows(users)))
        _analyze(engine, database.key)
    finally:
        engine.dispose()


def _compact(engine: sa.Engine, key: str) -> None:
    statement = {
        "sqlite": "VACUUM",
        "postgresql": "VACUUM FULL oauthtoken",
        "mysql": "OPTIMIZE TABLE oauthtoken",
    }[key]
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.exec_driver_sql(statement).close()


def _analyze(engine: sa.Engine, key: str) -> None:
    statement = {
        "sqlite": "ANALYZE",
        "postgresql": "ANALYZE oauthtoken",
        "mysql": "ANALYZE TABLE oauthtoken",
    }[key]
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.exec_driver_sql(statement).close()


@dataclass
class RawConnection:
    """An open DBAPI connection, and how to look a user up on it."""

    connection: Any
    sql: str
    # MySQL keys are VARBINARY, so the name is bound as UTF-8 bytes there.
    encode: Callable[[str], Any]

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


def raw_connection(database: Database) -> RawConnection:
    """Open the store's own DBAPI driver on the same database, in autocommit.

    The connection arguments come from SQLAlchemy's dialect, so the bare
    driver meets the server exactly as the store's pool does.
    """
    url = make_url(database.url)
    if database.key == "sqlite":
        connection = sqlite3.connect(url.database, check_same_thread=False)
        return RawConnection(connection, RAW_FIND_SQL["sqlite"], str)
    engine = sa.create_engine(url)
    args, kwargs = engine.dialect.create_connect_args(url)
    dbapi = engine.dialect.loaded_dbapi
    engine.dispose()
    if database.key == "postgresql":
        connection = dbapi.connect(*args, **kwargs)
        connection.autocommit = True
        return RawConnection(connection, RAW_FIND_SQL["postgresql"], str)
    connection = dbapi.connect(*args, **kwargs)
    connection.autocommit(True)
    return RawConnection(connection, RAW_FIND_SQL["mysql"], str.encode)


def server_version(database: Database) -> str:
    """Return the database server's version."""
    if database.key == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    engine = sa.create_engine(database.url)
    try:
        with engine.connect() as connection:
            if database.key == "postgresql":
                version = connection.exec_driver_sql("SHOW server_version").scalar()
                return f"PostgreSQL {version}"
            version = connection.exec_driver_sql("SELECT VERSION()").scalar()
            return f"MariaDB {version}" if "MariaDB" not in version else version
    finally:
        engine.dispose()
