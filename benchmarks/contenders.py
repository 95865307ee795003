"""The contenders: each one a per-call function of a user's index.

A contender's ``call(i)`` does one find or one save for user ``i``, as the
SDK would before a CRM request or after a refresh. Every find builds a new
token object carrying only the user name, the way a new request does.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from zohocrmsdk.src.com.zoho.api.authenticator.store.db_store import DBStore
from zohocrmsdk.src.com.zoho.api.authenticator.store.file_store import FileStore

from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.model import oauthtoken

from .data import Users, csv_rows, lookup, refreshed
from .databases import Database, RawConnection

# The SDK's own MySQL layout, under a name of its own so it never meets ours.
DBSTORE_TABLE = "sdk_dbstore_oauthtoken"
DBSTORE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {DBSTORE_TABLE} (id varchar(10) NOT NULL, "
    "user_name varchar(255), client_id varchar(255), client_secret varchar(255), "
    "refresh_token varchar(255), access_token varchar(255), "
    "grant_token varchar(255), expiry_time varchar(20), "
    "redirect_url varchar(255), api_domain varchar(255), primary key (id))"
)
# DBStore numbers rows with max(id)+1 over a varchar(10): the 11th user's
# save collides, so it is only ever compared with 10 users.
DBSTORE_USERS = 10

# The columns of the SDK's CSV file and of its MySQL table, in its order.
FILESTORE_HEADERS = [
    "id",
    "user_name",
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
    "grant_token",
    "expiry_time",
    "redirect_uri",
    "api_domain",
]
DBSTORE_COLUMNS = [*FILESTORE_HEADERS[:8], "redirect_url", "api_domain"]


@dataclass(frozen=True)
class Contender:
    """One thing timed: ``call(i)`` finds or saves user ``i``."""

    key: str  # stable id, e.g. "store.find"
    label: str
    operation: str  # "find" or "save"
    call: Callable[[int], Any]
    # Diagnostics explain where the store's time goes; they are reported
    # apart from the contenders the targets name.
    diagnostic: bool = False
    # How many distinct users ``call`` accepts; None means all of them.
    users: int | None = None
    # Releases what the contender holds open, if anything.
    close: Callable[[], None] | None = None


def check_found(token: Any) -> None:
    """Fail loudly when a find found nothing: the timing would be a lie."""
    if token is None:
        raise AssertionError("a benchmark lookup found no token")


def store_find(store: SQLAlchemyTokenStore, users: Users, **kw: Any) -> Contender:
    """Time ``store.find_token`` of a fresh token, by user name."""
    names = users.names

    def call(i: int) -> Any:
        return store.find_token(lookup(names[i]))

    return Contender(
        kw.pop("key", "store.find"),
        kw.pop("label", "SQLAlchemyTokenStore"),
        "find",
        call,
        **kw,
    )


def store_save(store: SQLAlchemyTokenStore, users: Users, **kw: Any) -> Contender:
    """Time ``store.save_token`` of a refreshed token: an update, by row id."""
    serials = itertools.count(1)

    def call(i: int) -> None:
        store.save_token(refreshed(users, i, next(serials), row_id=users.ids[i]))

    return Contender(
        kw.pop("key", "store.save"),
        kw.pop("label", "SQLAlchemyTokenStore"),
        "save",
        call,
        **kw,
    )


def raw_find(raw: RawConnection, users: Users, driver: str) -> Contender:
    """Time the bare driver: one parameterized SELECT on one open connection."""
    cursor = raw.connection.cursor()
    sql, encode, names = raw.sql, raw.encode, users.names

    def call(i: int) -> Any:
        cursor.execute(sql, (encode(names[i]),))
        return cursor.fetchone()

    return Contender(
        "raw.find", f"bare {driver} (floor)", "find", call, close=raw.close
    )


def file_store(directory: str, users: Users) -> FileStore:
    """Return the SDK's ``FileStore`` on a new CSV holding ``users``."""
    path = os.path.join(directory, f"sdk_file_store_{len(users)}.csv")
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(FILESTORE_HEADERS)
        writer.writerows(csv_rows(users))
    return FileStore(path)


def filestore_find(store: FileStore, users: Users) -> Contender:
    """Time the SDK's ``FileStore.find_token``: a scan of the CSV."""
    names = users.names

    def call(i: int) -> Any:
        return store.find_token(lookup(names[i]))

    return Contender("filestore.find", "SDK FileStore", "find", call)


def filestore_save(store: FileStore, users: Users) -> Contender:
    """Time the SDK's ``FileStore.save_token`` of a refreshed token."""
    serials = itertools.count(1)

    def call(i: int) -> None:
        store.save_token(refreshed(users, i, next(serials), row_id=str(i + 1)))

    return Contender("filestore.save", "SDK FileStore", "save", call)


def db_store(database: Database, users: Users) -> DBStore:
    """Return the SDK's ``DBStore`` on its own table, holding 10 of ``users``."""
    url = make_url(database.url)
    engine = sa.create_engine(url)
    table = sa.table(DBSTORE_TABLE, *(sa.column(name) for name in DBSTORE_COLUMNS))
    rows = []
    for row in itertools.islice(csv_rows(users), DBSTORE_USERS):
        rows.append(dict(zip(DBSTORE_COLUMNS, row, strict=True)))
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(DBSTORE_DDL)
            connection.execute(sa.delete(table))
            connection.execute(sa.insert(table), rows)
    finally:
        engine.dispose()
    return DBStore(
        host=url.host or "127.0.0.1",
        database_name=url.database,
        user_name=url.username or "root",
        password=url.password or "",
        port_number=str(url.port or 3306),
        table_name=DBSTORE_TABLE,
    )


def dbstore_find(store: DBStore, users: Users) -> Contender:
    """Time the SDK's ``DBStore.find_token``: a new MySQL connection per call."""
    names = users.names

    def call(i: int) -> Any:
        return store.find_token(lookup(names[i]))

    return Contender(
        "dbstore.find",
        f"SDK DBStore ({DBSTORE_USERS} users)",
        "find",
        call,
        users=DBSTORE_USERS,
    )


def dbapi_checkout_find(
    engine: sa.Engine, raw: RawConnection, users: Users
) -> Contender:
    """Time the bare driver's SELECT on a DBAPI connection checked out per call.

    This is the store's pool without SQLAlchemy's ``Connection``: what is left
    when only the pool stands between a call and the driver.
    """
    sql, encode, names = raw.sql, raw.encode, users.names

    def call(i: int) -> Any:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, (encode(names[i]),))
            row = cursor.fetchone()
            cursor.close()
            return row
        finally:
            connection.close()

    return Contender(
        "dbapi_checkout.find",
        "bare driver, pool checkout per call",
        "find",
        call,
        diagnostic=True,
    )


def core_held_find(engine: sa.Engine, users: Users) -> Contender:
    """Time SQLAlchemy Core alone: a prepared-once SELECT on a held connection."""
    query = sa.select(oauthtoken).where(oauthtoken.c.user_name == sa.bindparam("n"))
    connection = engine.connect()
    names = users.names

    def call(i: int) -> Any:
        return connection.execute(query, {"n": names[i]}).first()

    return Contender(
        "core_held.find",
        "SQLAlchemy Core, one held connection",
        "find",
        call,
        diagnostic=True,
        close=connection.close,
    )


def core_checkout_find(engine: sa.Engine, users: Users) -> Contender:
    """Time SQLAlchemy Core with a pool checkout per call, as the store does."""
    query = sa.select(oauthtoken).where(oauthtoken.c.user_name == sa.bindparam("n"))
    names = users.names

    def call(i: int) -> Any:
        with engine.connect() as connection:
            return connection.execute(query, {"n": names[i]}).first()

    return Contender(
        "core_checkout.find",
        "SQLAlchemy Core, pool checkout per call",
        "find",
        call,
        diagnostic=True,
    )
