"""What the store sends for one call: statements, and what reaches the server.

Two views of the same call. SQLAlchemy's ``before_cursor_execute`` event
shows the statements the store executes, with their compiled-cache status.
The driver's own trace shows everything sent to the server, including what
SQLAlchemy asks of the driver outside statements (``commit()``,
``rollback()``): the libpq protocol trace on PostgreSQL, PyMySQL's command
calls on MariaDB, and SQLite's statement trace callback.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from zoho_sa_store import SQLAlchemyTokenStore

from .data import CLIENT_ID, CLIENT_SECRET, FAR_EXPIRY_MS, Users, lookup, refreshed

# Enough calls for every cache to be warm: SQLAlchemy's compiled cache, and
# psycopg's server-side prepared statements (made on the 5th execution).
WARM_CALLS = 8


@dataclass
class Trace:
    """One call of the store, seen from SQLAlchemy and from the driver."""

    call: str
    statements: list[str] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)
    # One entry per round trip to the server (on SQLite: per statement run).
    sent: list[str] = field(default_factory=list)


def summarize(sql: str | bytes) -> str:
    """Shorten a statement to its shape: lists and values elided."""
    if isinstance(sql, bytes):
        sql = sql.decode("utf-8", "replace")
    text = " ".join(sql.split())
    # Placeholders of every paramstyle, and literals, become "?".
    text = re.sub(r"%\(\w+\)s(::\w+)?|\$\d+(::\w+)?|X?'[^']*'", "?", text)
    text = re.sub(r"^SELECT .+? FROM", "SELECT … FROM", text)
    while True:
        shorter = re.sub(r"\([^()]*\)", "(…)", text)
        if shorter == text:
            break
        text = shorter
    # The assignments of an upsert say nothing about its shape: elide them.
    updates = r"(DO UPDATE SET|DUPLICATE KEY UPDATE) .*?( RETURNING|$)"
    text = re.sub(updates, r"\1 …\2", text)
    return text if len(text) <= 100 else text[:99] + "…"


def _new_user_token(serial: int) -> OAuthToken:
    token = OAuthToken(
        user_signature=UserSignature(f"wire-trace-{serial}@example.com:1"),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=f"1000.wire-trace-refresh-{serial}",
        access_token=f"1000.wire-trace-access-{serial}",
    )
    token.set_expires_in(str(FAR_EXPIRY_MS))
    return token


@contextlib.contextmanager
def _sqlite_trace(dbapi: Any, sent: list[str]) -> Iterator[None]:
    dbapi.set_trace_callback(lambda sql: sent.append(summarize(sql)))
    try:
        yield
    finally:
        dbapi.set_trace_callback(None)


@contextlib.contextmanager
def _mysql_trace(dbapi: Any, sent: list[str]) -> Iterator[None]:
    from pymysql.constants import COMMAND

    names = {
        getattr(COMMAND, name): name for name in dir(COMMAND) if name.startswith("COM")
    }
    original = dbapi._execute_command

    def execute_command(command: int, sql: Any) -> Any:
        if command == COMMAND.COM_QUERY:
            sent.append(summarize(sql))
        else:
            sent.append(names.get(command, str(command)))
        return original(command, sql)

    # An instance attribute shadows the method for this connection only.
    dbapi._execute_command = execute_command
    try:
        yield
    finally:
        del dbapi._execute_command


@contextlib.contextmanager
def _postgresql_trace(dbapi: Any, sent: list[str]) -> Iterator[None]:
    from psycopg.pq import Trace as TraceFlags

    pgconn = dbapi.pgconn
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "libpq.trace")
        with open(path, "w") as out:
            pgconn.trace(out.fileno())
            pgconn.set_trace_flags(TraceFlags.SUPPRESS_TIMESTAMPS)
            try:
                yield
            finally:
                pgconn.untrace()
        with open(path) as trace:
            text = trace.read()
    prepared = dict(
        dbapi.execute("SELECT name, statement FROM pg_prepared_statements").fetchall()
    )
    sent.extend(_postgresql_round_trips(text, prepared))


def _postgresql_round_trips(text: str, prepared: dict[str, str]) -> list[str]:
    """Turn a libpq trace into one line per round trip (per Sync or Query)."""
    messages: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith(("F\t", "B\t")):
            messages.append(line.split("\t", 3))
        elif messages:  # a statement spread over several lines
            messages[-1][-1] += " " + line
    trips: list[str] = []
    current = ""
    for direction, _length, kind, *rest in messages:
        if direction != "F":
            continue
        body = rest[0] if rest else ""
        if kind == "Query":
            trips.append(summarize(body.strip().strip('"')))
        elif kind == "Parse":
            match = re.match(r'\s*"[^"]*"\s+"(.*)"\s+\d+', body, re.S)
            current = summarize(match.group(1)) if match else "Parse"
        elif kind == "Bind" and not current:
            match = re.match(r'\s*"[^"]*"\s+"([^"]*)"', body)
            name = match.group(1) if match else ""
            statement = prepared.get(name)
            current = f"{summarize(statement)} [prepared]" if statement else "Bind"
        elif kind == "Sync":
            trips.append(current or "Sync")
            current = ""
    return trips


_TRACERS: dict[str, Callable[[Any, list[str]], Any]] = {
    "sqlite": _sqlite_trace,
    "postgresql": _postgresql_trace,
    "mysql": _mysql_trace,
}


def trace_store(
    store: SQLAlchemyTokenStore, database_key: str, users: Users
) -> list[Trace]:
    """Trace one find and two saves of ``store``, once every cache is warm.

    The store must be used by this thread alone, so that its pool hands out
    the one connection being traced.
    """
    for serial in range(1, WARM_CALLS + 1):
        store.find_token(lookup(users.names[serial]))
        store.save_token(
            refreshed(users, serial, 10_000 + serial, row_id=users.ids[serial])
        )
    with store.engine.connect() as connection:
        dbapi = connection.connection.dbapi_connection
    # Warm the new-user insert path too, then remove what it wrote.
    for serial in range(WARM_CALLS):
        warm = _new_user_token(serial)
        store.save_token(warm)
        store.delete_token(warm.get_id())
    new_user = _new_user_token(WARM_CALLS)
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("find_token", lambda: store.find_token(lookup(users.names[0]))),
        (
            "save_token, refresh (by id)",
            lambda: store.save_token(refreshed(users, 0, 20_000, row_id=users.ids[0])),
        ),
        ("save_token, new user", lambda: store.save_token(new_user)),
    ]
    traces = []
    for name, call in calls:
        trace = Trace(name)
        with _recording(store.engine, trace), _TRACERS[database_key](dbapi, trace.sent):
            call()
        traces.append(trace)
    store.delete_token(new_user.get_id())
    return traces


@contextlib.contextmanager
def _recording(engine: sa.Engine, trace: Trace) -> Iterator[None]:
    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        trace.statements.append(summarize(statement))
        hit = getattr(context, "cache_hit", None)
        trace.cache.append(getattr(hit, "name", "n/a").lower().replace("_", " "))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", record)
