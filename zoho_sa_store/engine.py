"""Building the SQLAlchemy engine a store talks to."""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from .errors import store_error

log = logging.getLogger(__name__)

URL_VARIABLE = "ZOHO_TOKEN_STORE_URL"

# For each server database: the extra that installs its tested driver, and
# the URL scheme that uses that driver.
DRIVER_EXTRAS = {
    "postgresql": ("postgres", "postgresql+psycopg"),
    "mysql": ("mysql", "mysql+pymysql"),
    "mariadb": ("mysql", "mysql+pymysql"),
}

# How long opening a connection to a server may take before it is an error.
CONNECT_TIMEOUT_SECONDS = 10

# How long a SQLite writer waits for another process's write to finish.
SQLITE_BUSY_TIMEOUT_SECONDS = 30

DatabaseURL = str | URL | Engine


def resolve_url(url: DatabaseURL | None) -> DatabaseURL:
    """Return ``url``, or the URL in ``ZOHO_TOKEN_STORE_URL`` when it is None."""
    if url is not None:
        return url
    from_environment = os.environ.get(URL_VARIABLE, "").strip()
    if not from_environment:
        raise store_error(
            f"No database URL was given: pass one (for example "
            f"'sqlite:///zoho_tokens.db') or set {URL_VARIABLE}."
        )
    return from_environment


def parse_url(url: str | URL) -> URL:
    """Parse a database URL, with an error that never repeats its password."""
    try:
        return make_url(url)
    except ArgumentError as err:
        raise store_error(
            "The database URL is malformed: expected a form like "
            "'postgresql+psycopg://user:password@host/database'."
        ) from err


def is_sqlite_memory(url: URL) -> bool:
    """Tell whether a URL names a private in-memory SQLite database."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def require_existing_file(url: DatabaseURL) -> None:
    """Raise when ``url`` names a SQLite file that does not exist.

    Connecting would create an empty database there, which would hide a
    mistyped path from a command that only reads or deletes.
    """
    if isinstance(url, Engine):
        return
    parsed = parse_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and not is_sqlite_memory(parsed)
        and not os.path.exists(parsed.database)
    ):
        raise store_error(
            f"The SQLite database {parsed.database} does not exist: check the URL."
        )


def build_engine(
    url: DatabaseURL, connect_timeout: float = CONNECT_TIMEOUT_SECONDS
) -> Engine:
    """Return an engine for ``url``; an ``Engine`` is returned as it is.

    Every operation of the store is one statement, atomic on its own, so the
    engines made here run in autocommit mode: a call costs no BEGIN, COMMIT or
    ROLLBACK round trip, and a connection goes back to the pool with nothing
    to reset. Parameters are hidden from SQLAlchemy's error messages because
    they are tokens. ``connect_timeout`` bounds how long opening a
    connection to a server may take (on MySQL, every read and write too);
    the same options given in the URL win.
    """
    if isinstance(url, Engine):
        return url
    parsed = parse_url(url)
    options: dict = {
        "isolation_level": "AUTOCOMMIT",
        "pool_reset_on_return": None,
        # Without this, closing a connection still sends a ROLLBACK that
        # autocommit makes pointless (PyMySQL sends it every time).
        "skip_autocommit_rollback": True,
        "hide_parameters": True,
    }
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        options["connect_args"] = {
            "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
            "check_same_thread": False,
        }
        if is_sqlite_memory(parsed):
            # One connection for the whole process: each new connection to
            # ":memory:" would open an empty database of its own.
            options["poolclass"] = StaticPool
    else:
        # Without these a vanished server can hold a call for minutes. Both
        # drivers take whole seconds; never round a bound down to none.
        seconds = max(1, math.ceil(connect_timeout))
        bounds = ["connect_timeout"]
        if backend in ("mysql", "mariadb"):
            # PyMySQL reads the server's greeting under its read timeout, not
            # the connect timeout: without one, a server that accepts and
            # then stays silent would hang the call for ever.
            bounds += ["read_timeout", "write_timeout"]
        connect_args = {name: seconds for name in bounds if name not in parsed.query}
        if backend == "postgresql" and "tcp_user_timeout" not in parsed.query:
            # A host that vanished leaves what was sent unacknowledged; this
            # makes the kernel give up on it after the same bound (libpq
            # takes milliseconds) instead of after many minutes.
            connect_args["tcp_user_timeout"] = seconds * 1000
        # TODO: libpq has no read timeout, so on PostgreSQL a pooled
        # connection to a server process that stops answering while its host
        # still acknowledges packets waits for as long as it stays silent.
        options["connect_args"] = connect_args
    try:
        engine = create_engine(parsed, **options)
    except NoSuchModuleError as err:
        raise store_error(
            f"The database URL names an unknown dialect "
            f"'{parsed.drivername}': use sqlite, postgresql+psycopg or "
            f"mysql+pymysql."
        ) from err
    except ImportError as err:
        extra, scheme = DRIVER_EXTRAS.get(backend, ("postgres,mysql", "a"))
        raise store_error(
            f"The database driver for '{parsed.drivername}' is not installed: "
            f"run `pip install 'zoho-sa-store[{extra}]'` and use a '{scheme}://' "
            f"URL."
        ) from err
    if backend == "sqlite" and not is_sqlite_memory(parsed):
        event.listen(engine, "connect", _use_write_ahead_log)
    log.debug("Created an engine for %s", safe_url(engine))
    return engine


def _use_write_ahead_log(dbapi_connection, connection_record) -> None:
    # With a write-ahead log, readers in other processes are not blocked
    # while one process writes. Switching a file to it needs the file to
    # itself for a moment, and when another process is creating or switching
    # the same file, SQLite answers "locked" at once rather than waiting (it
    # would be a deadlock), so the switch is tried again within the busy
    # timeout.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    pause = 0.01
    while True:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
        finally:
            cursor.close()
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def safe_url(engine: Engine) -> str:
    """Render an engine's URL for people, with the password masked."""
    return engine.url.render_as_string(hide_password=True)
