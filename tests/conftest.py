"""Fixtures that run each test on SQLite, PostgreSQL and the MySQL protocol.

Server URLs come from ``ZOHO_STORE_TEST_POSTGRES_URL`` and
``ZOHO_STORE_TEST_MYSQL_URL``, defaulting to the local services. A server that
cannot be reached skips its tests with the reason shown, except under CI
(``CI=true``), where it fails them: the matrix must never shrink unseen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from zoho_sa_store import SQLAlchemyTokenStore, upgrade
from zoho_sa_store.migrate import downgrade

SERVER_URLS = {
    "postgresql": os.environ.get(
        "ZOHO_STORE_TEST_POSTGRES_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ),
    "mysql": os.environ.get(
        "ZOHO_STORE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}
UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DATABASES = ["sqlite", "postgresql", "mysql"]

_reachability: dict[str, str | None] = {}


def _unreachable_reason(name: str) -> str | None:
    """Return why a server cannot be used, or None when it can."""
    if name not in _reachability:
        engine = sa.create_engine(
            SERVER_URLS[name], connect_args={"connect_timeout": 5}
        )
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            _reachability[name] = None
        except Exception as err:  # any failure means: not usable here
            _reachability[name] = f"{type(err).__name__}: {err}".splitlines()[0]
        finally:
            engine.dispose()
    return _reachability[name]


def require_server(name: str) -> str:
    """Return the server's URL, or skip (fail under CI) when it is down."""
    reason = _unreachable_reason(name)
    if reason is not None:
        message = f"{name} at {SERVER_URLS[name]} is unreachable: {reason}"
        if UNDER_CI:
            pytest.fail(message + " (CI requires every database)")
        pytest.skip(message)
    return SERVER_URLS[name]


_fresh_servers: set[str] = set()


def prepare_database(name: str, tmp_path) -> str:
    """Return a URL of an empty, current token table on the named database."""
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'tokens.db'}"
    url = require_server(name)
    if name not in _fresh_servers:
        # Start each run from an empty schema, whatever an earlier run left.
        # The rows go first: a downgrade refuses to drop encrypted ones.
        empty_token_table(url)
        downgrade(url, "base")
        _fresh_servers.add(name)
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM oauthtoken"))
    engine.dispose()
    return url


def empty_token_table(url: str) -> None:
    """Delete every row of the token table, if there is one."""
    engine = sa.create_engine(url)
    try:
        if sa.inspect(engine).has_table("oauthtoken"):
            with engine.begin() as connection:
                connection.execute(sa.text("DELETE FROM oauthtoken"))
    finally:
        engine.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    """A URL of an empty token table, on each database in turn.

    SQLite's table is created by the store on first use.
    """
    return prepare_database(request.param, tmp_path)


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request, tmp_path) -> str:
    """A URL of an empty, current token table, on each server database."""
    return prepare_database(request.param, tmp_path)


@pytest.fixture
def store(database_url) -> Iterator[SQLAlchemyTokenStore]:
    token_store = SQLAlchemyTokenStore(database_url)
    yield token_store
    token_store.dispose()


@pytest.fixture
def server_store(server_url) -> Iterator[SQLAlchemyTokenStore]:
    token_store = SQLAlchemyTokenStore(server_url)
    yield token_store
    token_store.dispose()


class StatementLog:
    """The SQL statements an engine sends, recorded by an event hook."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[str] = []
        self._engine = engine
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, many):
        self.statements.append(statement)

    def clear(self) -> None:
        self.statements.clear()

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._record)

    def __len__(self) -> int:
        return len(self.statements)


@pytest.fixture
def statements(store) -> Iterator[StatementLog]:
    log = StatementLog(store.engine)
    yield log
    log.close()


@pytest.fixture
def statements_for() -> Iterator:
    """Return a function that starts recording the statements of a store."""
    logs: list[StatementLog] = []

    def start(token_store: SQLAlchemyTokenStore) -> StatementLog:
        logs.append(StatementLog(token_store.engine))
        return logs[-1]

    yield start
    for log in logs:
        log.close()
