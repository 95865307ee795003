"""Many threads sharing one store: mixed finds and saves, for a while."""

from __future__ import annotations

import collections
import random
import statistics
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import event
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from zoho_sa_store import SQLAlchemyTokenStore, upgrade
from zoho_sa_store.model import oauthtoken

from .data import (
    CLIENT_ID,
    CLIENT_SECRET,
    FAR_EXPIRY_MS,
    Users,
    lookup,
    make_users,
    refreshed,
    table_rows,
)
from .databases import Database


@dataclass
class ThreadLoadResult:
    """What a thread load did, and what it left in the table."""

    database: str
    threads: int
    seconds: float
    users: int
    save_share: float
    finds: int = 0
    found: int = 0
    saves: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    error_examples: dict[str, str] = field(default_factory=dict)
    duplicate_names: int = 0
    rows_after: int = 0
    connections_opened: int = 0
    pool: str = ""
    find_ms: list[float] = field(default_factory=list)
    save_ms: list[float] = field(default_factory=list)

    @property
    def calls(self) -> int:
        """Return every call made, finds and saves."""
        return self.finds + self.saves

    @property
    def throughput(self) -> float:
        """Return calls per second over the whole load."""
        return self.calls / self.seconds

    def percentile(self, values: list[float], share: float) -> float:
        """Return the value below which ``share`` of ``values`` fall."""
        if len(values) < 2:
            return values[0] if values else float("nan")
        return statistics.quantiles(values, n=100)[round(share * 100) - 1]


def _grant_token(users: Users, user: int, serial: int) -> OAuthToken:
    # A first save for a user: a grant exchange, so a refresh token of its own.
    token = OAuthToken(
        user_signature=UserSignature(users.names[user]),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=f"1000.thread-grant-{user}-{serial}",
        access_token=f"1000.thread-access-{user}-{serial}",
    )
    token.set_expires_in(str(FAR_EXPIRY_MS))
    return token


def run_thread_load(
    database: Database,
    *,
    threads: int,
    seconds: float,
    user_count: int = 200,
    save_share: float = 0.1,
    seed: int = 7,
) -> ThreadLoadResult:
    """Run ``threads`` threads on one store for ``seconds``; check the table after.

    Half the users are stored beforehand; their saves are refreshes. The
    other half appear during the load, their first saves racing each other,
    which is where a find-then-insert store would write duplicate rows.
    Saves go by user name (the SDK's first save of a user carries no id), so
    every save exercises the upsert's conflict handling.
    """
    users = make_users(user_count, seed=seed)
    stored = user_count // 2
    upgrade(database.url)
    setup = sa.create_engine(database.url)
    try:
        with setup.begin() as connection:
            connection.execute(sa.delete(oauthtoken))
            rows = list(table_rows(users))[:stored]
            connection.execute(sa.insert(oauthtoken), rows)
    finally:
        setup.dispose()

    store = SQLAlchemyTokenStore(database.url)
    result = ThreadLoadResult(database.label, threads, seconds, user_count, save_share)
    result.pool = store.engine.pool.status()
    store.find_token(lookup(users.names[0]))  # the schema check, once
    opened = [0]

    def count_connect(dbapi_connection, connection_record) -> None:
        opened[0] += 1

    event.listen(store.engine, "connect", count_connect)
    lock = threading.Lock()
    start_line = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        finds = found = saves = 0
        find_ms: list[float] = []
        save_ms: list[float] = []
        errors: collections.Counter = collections.Counter()
        examples: dict[str, str] = {}
        serial = number * 10_000_000
        start_line.wait()
        while time.perf_counter() < deadline[0]:
            user = rng.randrange(user_count)
            serial += 1
            began = time.perf_counter()
            try:
                if rng.random() < save_share:
                    if user < stored:
                        token = refreshed(users, user, serial, row_id=None)
                    else:
                        token = _grant_token(users, user, serial)
                    store.save_token(token)
                    saves += 1
                    save_ms.append((time.perf_counter() - began) * 1000)
                else:
                    token = store.find_token(lookup(users.names[user]))
                    finds += 1
                    found += token is not None
                    find_ms.append((time.perf_counter() - began) * 1000)
            except Exception as err:  # counted and reported, never fatal
                name = type(err).__name__
                errors[name] += 1
                examples.setdefault(name, str(err).splitlines()[0][:200])
        with lock:
            result.finds += finds
            result.found += found
            result.saves += saves
            result.errors.update(errors)
            for name, text in examples.items():
                result.error_examples.setdefault(name, text)
            result.find_ms.extend(find_ms)
            result.save_ms.extend(save_ms)

    workers = [
        threading.Thread(target=worker, args=(n,), name=f"bench-{n}")
        for n in range(threads)
    ]
    for thread in workers:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    start_line.wait()
    for thread in workers:
        thread.join()
    result.seconds = time.perf_counter() - started
    event.remove(store.engine, "connect", count_connect)
    result.connections_opened = opened[0]
    store.dispose()
    _check_table(database, result)
    return result


def _check_table(database: Database, result: ThreadLoadResult) -> None:
    duplicates = (
        sa.select(oauthtoken.c.user_name, sa.func.count())
        .group_by(oauthtoken.c.user_name)
        .having(sa.func.count() > 1)
    )
    engine = sa.create_engine(database.url)
    try:
        with engine.connect() as connection:
            result.duplicate_names = len(connection.execute(duplicates).all())
            count = sa.select(sa.func.count()).select_from(oauthtoken)
            result.rows_after = connection.execute(count).scalar_one()
    finally:
        engine.dispose()
