"""A store that outlives its connections, and its server's outages."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy
from tokens import lookup, user_token
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from zoho_sa_store import SQLAlchemyTokenStore

BACKEND_ID = {
    "postgresql": ("SELECT pg_backend_pid()", "SELECT pg_terminate_backend(:id)"),
    "mysql": ("SELECT CONNECTION_ID()", "KILL :id"),
}


def kill_pooled_connection(store: SQLAlchemyTokenStore, server_url: str) -> None:
    """Have the server end the store's pooled connection, as a restart would."""
    ask, kill = BACKEND_ID[make_url(server_url).get_backend_name()]
    with store.engine.connect() as connection:
        backend = connection.execute(sa.text(ask)).scalar()
    admin = sa.create_engine(server_url)
    with admin.connect() as connection:
        connection.execute(sa.text(kill), {"id": backend})
        connection.commit()
    admin.dispose()


def test_find_after_the_server_killed_the_connection_succeeds(
    server_url, server_store, statements_for
):
    store = server_store
    statements = statements_for(store)
    store.save_token(user_token("a@zylker.com:1"))
    kill_pooled_connection(store, server_url)
    statements.clear()

    found = store.find_token(lookup("a@zylker.com:1"))

    assert found.get_refresh_token() == "refresh-a@zylker.com:1"
    # The SELECT that met the dead connection, then the same SELECT again:
    # no ping, here or on any other call.
    assert len(statements) == 2
    statements.clear()
    store.find_token(lookup("a@zylker.com:1"))
    assert len(statements) == 1


def test_save_after_the_server_killed_the_connection_writes_one_row(
    server_url, server_store
):
    store = server_store
    store.save_token(user_token("a@zylker.com:1"))
    kill_pooled_connection(store, server_url)

    store.save_token(user_token("a@zylker.com:1", access_token="access-new"))

    (saved,) = store.get_tokens()
    assert saved.get_access_token() == "access-new"


def test_failed_save_leaves_no_partial_row(server_store):
    store = server_store
    store.save_token(user_token("a@zylker.com:1"))
    # A value the column cannot hold fails the statement on the server,
    # after some of the row's values were already accepted.
    too_long = user_token("b@zylker.com:1", redirect_url="https://x/" + "y" * 300)

    with pytest.raises(SDKException):
        store.save_token(too_long)

    assert [t.get_user_signature().get_name() for t in store.get_tokens()] == [
        "a@zylker.com:1"
    ]


@pytest.fixture
def proxied(server_url):
    """The server behind a proxy the test can take down and bring back."""
    url = make_url(server_url)
    proxy = TcpProxy(url.host, url.port).start()
    store = SQLAlchemyTokenStore(url.set(port=proxy.port), connect_timeout_seconds=2)
    yield proxy, store
    proxy.stop()
    store.dispose()


def test_server_down_is_a_clear_error_and_the_store_recovers(proxied):
    proxy, store = proxied
    store.save_token(user_token("a@zylker.com:1"))

    proxy.stop()
    with pytest.raises(SDKException) as caught:
        store.find_token(lookup("a@zylker.com:1"))
    assert caught.value.code == "TOKEN_STORE"
    assert "Could not find the token" in str(caught.value)

    proxy.start()
    assert store.find_token(lookup("a@zylker.com:1")) is not None


def test_server_that_never_answers_fails_within_the_connect_timeout(proxied):
    proxy, store = proxied
    store.save_token(user_token("a@zylker.com:1"))
    proxy.stop()
    proxy.silent = True
    proxy.start()
    started = time.monotonic()

    with pytest.raises(SDKException) as caught:
        store.find_token(lookup("a@zylker.com:1"))

    # Bounded by the 2 s connect timeout (and its one retry), not a hang;
    # the bound is generous because the machine may be busy.
    assert time.monotonic() - started < 30
    assert caught.value.code == "TOKEN_STORE"


def test_mysql_calls_send_no_commit_or_rollback_round_trip(tmp_path):
    # Autocommit makes both pointless, yet PyMySQL would send each one.
    from conftest import prepare_database

    store = SQLAlchemyTokenStore(prepare_database("mysql", tmp_path))
    store.save_token(user_token("a@zylker.com:1"))

    def sent(name: str) -> int:
        # The pool hands the store's one connection to this query too.
        with store.engine.connect() as connection:
            row = connection.exec_driver_sql(f"SHOW SESSION STATUS LIKE '{name}'")
            return int(row.one()[1])

    before = sent("Com_commit"), sent("Com_rollback")
    for _ in range(5):
        store.find_token(lookup("a@zylker.com:1"))
        store.save_token(user_token("a@zylker.com:1", access_token="access-new"))
    after = sent("Com_commit"), sent("Com_rollback")

    assert after == before
    store.dispose()
