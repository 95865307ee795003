"""The real SDK against the loopback Zoho, with the store on every database."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from sdk_flow import CLIENT_ID, CLIENT_SECRET, expire, forget_initializer, sign_in
from sdk_worker import fetch_access_token
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from zoho_sa_store.testing import LoopbackZoho

pytest_plugins = ["zoho_sa_store.pytest_plugin"]

USER = "user@zylker.com:42"


@pytest.fixture(autouse=True)
def _fresh_sdk():
    yield
    forget_initializer()


def test_grant_token_is_exchanged_and_saved_under_email_and_org_id(
    store, loopback_zoho
):
    token = sign_in(loopback_zoho, store)

    (saved,) = store.get_tokens()
    assert saved.get_user_signature().get_name() == USER
    assert saved.get_id() == token.get_id()
    assert saved.get_access_token() == token.get_access_token()
    assert loopback_zoho.is_access_token_valid(saved.get_access_token())
    calls = loopback_zoho.calls
    assert (calls["grant"], calls["current_user"], calls["org"]) == (1, 1, 1)


def test_another_process_with_only_the_user_name_makes_no_accounts_call(
    store, loopback_zoho, database_url
):
    token = sign_in(loopback_zoho, store)
    loopback_zoho.reset_counters()
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(1), context.Queue()
    child = context.Process(
        target=fetch_access_token,
        args=(database_url, loopback_zoho.url, USER, start, results, {}),
    )

    child.start()
    outcome = results.get(timeout=60)
    child.join(timeout=30)

    assert outcome == ("ok", token.get_access_token())
    assert loopback_zoho.calls["grant"] == loopback_zoho.calls["refresh"] == 0


def test_expired_token_is_refreshed_into_the_same_row(store, loopback_zoho):
    first = sign_in(loopback_zoho, store)
    expire(store, USER)
    forget_initializer()
    token = OAuthToken(user_signature=UserSignature(USER))

    Initializer.initialize(
        environment=loopback_zoho.environment, token=token, store=store
    )

    assert loopback_zoho.calls["refresh"] == 1
    assert token.get_access_token() != first.get_access_token()
    (saved,) = store.get_tokens()
    assert saved.get_id() == first.get_id()
    assert saved.get_access_token() == token.get_access_token()
    assert int(saved.get_expires_in()) > 1000


def test_token_with_only_an_id_is_found_and_refreshed_by_id(store, loopback_zoho):
    first = sign_in(loopback_zoho, store)
    expire(store, USER)
    forget_initializer()
    token = OAuthToken(id=first.get_id())

    Initializer.initialize(
        environment=loopback_zoho.environment, token=token, store=store
    )

    assert loopback_zoho.calls["refresh"] == 1
    (saved,) = store.get_tokens()
    assert saved.get_id() == first.get_id()
    # The SDK refreshes the token it got from the store, not the one it was
    # given, so the new access token is in the row and in what it returns.
    assert saved.get_access_token() != first.get_access_token()
    assert loopback_zoho.is_access_token_valid(saved.get_access_token())
    assert token.get_token() == saved.get_access_token()


def test_remove_deletes_the_users_row(store, loopback_zoho):
    token = sign_in(loopback_zoho, store)

    assert token.remove() is True

    assert store.get_tokens() == []


def test_revoke_by_id_reaches_the_accounts_server(store, loopback_zoho):
    token = sign_in(loopback_zoho, store)

    assert token.revoke(token.get_id()) is True

    assert loopback_zoho.calls["revoke"] == 1


def test_two_users_switching_in_threads_each_get_their_own_token(store, loopback_zoho):
    a = sign_in(loopback_zoho, store, email="a@zylker.com", org_id="1")
    b = sign_in(loopback_zoho, store, email="b@zylker.com", org_id="2")
    seen: dict[str, set[str]] = {"a@zylker.com:1": set(), "b@zylker.com:2": set()}
    errors = []

    def work(name: str) -> None:
        try:
            for _ in range(5):
                token = OAuthToken(user_signature=UserSignature(name))
                # The store is process-wide: switch_user keeps the one given
                # to initialize.
                Initializer.switch_user(
                    environment=loopback_zoho.environment, token=token
                )
                seen[name].add(Initializer.get_initializer().token.get_token())
        except Exception as err:  # collected, so the test can report it
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert seen == {
        "a@zylker.com:1": {a.get_access_token()},
        "b@zylker.com:2": {b.get_access_token()},
    }
    assert len(store.get_tokens()) == 2
    assert loopback_zoho.calls["refresh"] == 0


def test_new_token_with_client_credentials_is_found_by_refresh_token(
    store, loopback_zoho
):
    first = sign_in(loopback_zoho, store)
    forget_initializer()
    token = OAuthToken(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=first.get_refresh_token(),
    )

    Initializer.initialize(
        environment=loopback_zoho.environment, token=token, store=store
    )

    assert token.get_access_token() == first.get_access_token()
    assert len(store.get_tokens()) == 1
    assert loopback_zoho.calls["refresh"] == 0


def test_loopback_zoho_is_reachable_from_the_fixture(loopback_zoho: LoopbackZoho):
    assert loopback_zoho.running
