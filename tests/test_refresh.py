"""One refresh per expiry, across processes, through the database alone."""

from __future__ import annotations

import multiprocessing

import pytest
from sdk_flow import expire, forget_initializer, sign_in
from sdk_worker import fetch_access_token, take_lease_and_die
from tokens import lookup, user_token
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.clock import local_now_ms

pytest_plugins = ["zoho_sa_store.pytest_plugin"]

USER = "user@zylker.com:42"
# A realistic round trip to Zoho's accounts server.
SLOW_ZOHO = pytest.mark.parametrize(
    "loopback_zoho", [{"token_delay": 0.3}], indirect=True
)


@pytest.fixture(autouse=True)
def _fresh_sdk():
    yield
    forget_initializer()


def run_together(target, argument_lists, timeout=120):
    """Start one spawned process per argument list at once; return outcomes."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(len(argument_lists)), context.Queue()
    workers = [
        context.Process(target=target, args=(*args[:3], start, results, args[3]))
        for args in argument_lists
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=timeout) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return outcomes


@SLOW_ZOHO
def test_eight_processes_see_one_refresh_for_one_expiry(
    store, loopback_zoho, database_url
):
    sign_in(loopback_zoho, store)
    expire(store, USER)
    loopback_zoho.reset_counters()

    outcomes = run_together(
        fetch_access_token,
        [(database_url, loopback_zoho.url, USER, {})] * 8,
    )

    assert [kind for kind, _ in outcomes] == ["ok"] * 8, outcomes
    assert loopback_zoho.calls["refresh"] == 1
    (saved,) = store.get_tokens()
    assert {access for _, access in outcomes} == {saved.get_access_token()}


@SLOW_ZOHO
def test_refresher_that_dies_holding_the_lease_is_taken_over(
    store, loopback_zoho, database_url
):
    sign_in(loopback_zoho, store)
    expire(store, USER)
    loopback_zoho.reset_counters()
    options = {"refresh_lease_seconds": 1.0, "refresh_wait_seconds": 30.0}
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    crasher = context.Process(
        target=take_lease_and_die, args=(database_url, USER, results, options)
    )
    crasher.start()
    assert results.get(timeout=60)[0] == "holding"
    crasher.join(timeout=30)
    assert crasher.exitcode == 3

    outcomes = run_together(
        fetch_access_token,
        [(database_url, loopback_zoho.url, USER, options)] * 4,
    )

    assert [kind for kind, _ in outcomes] == ["ok"] * 4, outcomes
    assert loopback_zoho.calls["refresh"] == 1
    (saved,) = store.get_tokens()
    assert {access for _, access in outcomes} == {saved.get_access_token()}


def test_caller_that_read_the_old_row_cannot_take_a_lease_after_the_save(store):
    store.save_token(user_token(USER, expiry_time=str(local_now_ms())))
    old_row = store._coordinator._read(store.get_tokens()[0].get_id())
    # Another caller refreshes and saves between this caller's read and its
    # attempt at the lease.
    store.save_token(
        user_token(USER, access_token="fresh", expiry_time="1893456000000")
    )

    row, refresh_here = store._coordinator.settle(old_row)

    assert refresh_here is False
    assert row["access_token"] == "fresh"


def test_lease_holder_gets_the_token_marked_due_and_others_wait(store, statements):
    store.save_token(user_token(USER, expiry_time=str(local_now_ms() + 6000)))
    statements.clear()

    holder = store.find_token(lookup(USER))

    # One SELECT, one UPDATE that took the lease.
    assert len(statements) == 2
    assert int(holder.get_expires_in()) - local_now_ms() < 5000
    impatient = SQLAlchemyTokenStore(
        store.engine, refresh_wait_seconds=0.2, refresh_lease_seconds=10.0
    )
    # The lease is live and nobody saves: the waiter gives up after its
    # bound and refreshes itself rather than hang.
    waiter = impatient.find_token(lookup(USER))
    assert int(waiter.get_expires_in()) - local_now_ms() < 5000


def test_save_ends_the_lease(store):
    store.save_token(user_token(USER, expiry_time=str(local_now_ms())))
    store.find_token(lookup(USER))  # takes the lease

    store.save_token(user_token(USER, access_token="new", expiry_time="1893456000000"))

    row = store._coordinator._read(store.get_tokens()[0].get_id())
    assert row["refresh_lease_until"] is None


def test_coordination_off_sends_no_lease_statement(database_url, statements_for):
    store = SQLAlchemyTokenStore(database_url, refresh_coordination=False)
    store.save_token(user_token(USER, expiry_time=str(local_now_ms())))
    log = statements_for(store)

    store.find_token(lookup(USER))
    store.find_token(lookup(USER))

    assert len(log) == 2
    store.dispose()


def test_long_lived_token_objects_share_one_refresh(store, loopback_zoho):
    # The SDK keeps one token object per user in each worker for the life of
    # the process. Two workers' objects reach the expiry together; once an
    # object has an id the SDK looks it up by id, which hands it the row.
    sign_in(loopback_zoho, store)
    workers = [OAuthToken(user_signature=UserSignature(USER)) for _ in range(2)]
    for worker in workers:
        worker.get_token()
    expiry = str(local_now_ms() + 1000)
    for worker in workers:
        worker.set_expires_in(expiry)
    _set_stored_expiry(store, expiry)
    loopback_zoho.reset_counters()

    first, second = (worker.get_token() for worker in workers)

    assert loopback_zoho.calls["refresh"] == 1
    assert first == second
    assert store.get_tokens()[0].get_access_token() == first


def _set_stored_expiry(store, expiry: str) -> None:
    (token,) = store.get_tokens()
    token.set_expires_in(expiry)
    store.save_token(token)
