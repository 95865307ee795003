"""The ``TokenStore`` contract, on every database."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from tokens import lookup, user_token
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from zoho_sa_store import SQLAlchemyTokenStore

ALL_FIELDS = (
    "get_id",
    "get_client_id",
    "get_client_secret",
    "get_refresh_token",
    "get_access_token",
    "get_grant_token",
    "get_expires_in",
    "get_redirect_url",
    "get_api_domain",
)


def count_rows(store: SQLAlchemyTokenStore) -> int:
    return len(store.get_tokens())


# find_token


def test_find_token_fills_only_the_fields_that_are_none(store):
    store.save_token(user_token("a@zylker.com:1", redirect_url="https://app/cb"))
    token = OAuthToken(
        user_signature=UserSignature("a@zylker.com:1"), access_token="mine"
    )

    found = store.find_token(token)

    assert found is token
    assert token.get_access_token() == "mine"
    assert token.get_refresh_token() == "refresh-a@zylker.com:1"
    assert token.get_client_secret() == "client-secret"
    assert token.get_redirect_url() == "https://app/cb"
    assert token.get_expires_in() == "1893456000000"
    assert token.get_id() is not None


def test_find_token_for_an_unknown_user_returns_none(store):
    store.save_token(user_token("a@zylker.com:1"))

    assert store.find_token(lookup("b@zylker.com:1")) is None


def test_empty_user_name_finds_nothing_while_other_rows_exist(store):
    store.save_token(user_token("a@zylker.com:1"))
    # An empty name with a refresh token that is stored: still nothing,
    # because a user signature is the only key when it is present.
    token = OAuthToken(
        user_signature=UserSignature(""), refresh_token="refresh-a@zylker.com:1"
    )

    assert store.find_token(token) is None
    assert store.find_token(lookup("")) is None


def test_token_without_any_key_finds_nothing(store):
    store.save_token(user_token("a@zylker.com:1"))
    # An access token with client credentials is not a key, and there is no
    # grant token, refresh token or id.
    token = object.__new__(OAuthToken)
    for setter in (
        "set_id",
        "set_refresh_token",
        "set_grant_token",
        "set_expires_in",
        "set_redirect_url",
        "set_api_domain",
        "set_user_signature",
    ):
        getattr(token, setter)(None)
    token.set_client_id("client-id")
    token.set_client_secret("client-secret")
    token.set_access_token("access-a@zylker.com:1")

    assert store.find_token(token) is None


def test_find_token_by_access_token_without_client_credentials(store):
    store.save_token(user_token("a@zylker.com:1"))

    found = store.find_token(OAuthToken(access_token="access-a@zylker.com:1"))

    assert found.get_user_signature().get_name() == "a@zylker.com:1"


def test_find_token_prefers_the_grant_token_over_the_refresh_token(store):
    store.save_token(user_token("a@zylker.com:1", grant_token="grant-a"))
    store.save_token(user_token("b@zylker.com:1", grant_token="grant-b"))
    token = OAuthToken(
        client_id="client-id",
        client_secret="client-secret",
        grant_token="grant-a",
        refresh_token="refresh-b@zylker.com:1",
    )

    found = store.find_token(token)

    assert found.get_user_signature().get_name() == "a@zylker.com:1"


def test_find_token_by_refresh_token(store):
    store.save_token(user_token("a@zylker.com:1"))
    token = OAuthToken(
        client_id="client-id",
        client_secret="client-secret",
        refresh_token="refresh-a@zylker.com:1",
    )

    assert store.find_token(token).get_user_signature().get_name() == "a@zylker.com:1"


def test_find_token_with_only_an_id_finds_that_row(store):
    saved = user_token("a@zylker.com:1")
    store.save_token(saved)

    found = store.find_token(OAuthToken(id=saved.get_id()))

    assert found.get_refresh_token() == "refresh-a@zylker.com:1"


# find_token_by_id


def test_find_token_by_id_returns_a_new_fully_populated_token(store):
    saved = user_token("a@zylker.com:1", grant_token="g", redirect_url="https://cb")
    saved.set_api_domain("https://www.zohoapis.com")
    store.save_token(saved)

    found = store.find_token_by_id(saved.get_id())

    assert found is not saved
    assert isinstance(found, OAuthToken)
    for getter in ALL_FIELDS:
        assert getattr(found, getter)() == getattr(saved, getter)(), getter
    assert found.get_user_signature().get_name() == "a@zylker.com:1"


def test_find_token_by_unknown_id_raises_token_store_error_naming_the_id(store):
    with pytest.raises(SDKException) as caught:
        store.find_token_by_id("no-such-id")

    assert caught.value.code == "TOKEN_STORE"
    assert "no-such-id" in str(caught.value)


# save_token


def test_save_token_sets_a_generated_id_on_the_token(store):
    token = user_token("a@zylker.com:1")

    store.save_token(token)

    assert token.get_id()
    assert store.find_token_by_id(token.get_id()).get_refresh_token() == (
        "refresh-a@zylker.com:1"
    )


def test_saving_the_same_user_twice_updates_one_row(store):
    first = user_token("a@zylker.com:1")
    store.save_token(first)
    second = user_token("a@zylker.com:1", access_token="access-new")

    store.save_token(second)

    assert count_rows(store) == 1
    assert second.get_id() == first.get_id()
    assert store.find_token(lookup("a@zylker.com:1")).get_access_token() == "access-new"


def test_fields_that_are_none_keep_their_stored_values(store):
    store.save_token(user_token("a@zylker.com:1", redirect_url="https://cb"))
    update = OAuthToken(
        user_signature=UserSignature("a@zylker.com:1"), access_token="access-new"
    )

    store.save_token(update)

    found = store.find_token(lookup("a@zylker.com:1"))
    assert found.get_access_token() == "access-new"
    assert found.get_refresh_token() == "refresh-a@zylker.com:1"
    assert found.get_redirect_url() == "https://cb"
    assert found.get_expires_in() == "1893456000000"


def test_save_token_with_an_id_updates_that_row(store):
    saved = user_token("a@zylker.com:1")
    store.save_token(saved)
    by_id = OAuthToken(id=saved.get_id(), access_token="access-new")

    store.save_token(by_id)

    assert count_rows(store) == 1
    assert store.find_token_by_id(saved.get_id()).get_access_token() == "access-new"


def test_save_token_with_an_unknown_id_inserts_a_row_with_that_id(store):
    token = OAuthToken(id="42", refresh_token="refresh-42")

    store.save_token(token)

    assert store.find_token_by_id("42").get_refresh_token() == "refresh-42"


def test_save_token_without_a_key_raises_and_writes_nothing(store):
    token = OAuthToken(user_signature=UserSignature(""), refresh_token="r")

    with pytest.raises(SDKException) as caught:
        store.save_token(token)

    assert caught.value.code == "TOKEN_STORE"
    assert count_rows(store) == 0


def test_save_token_without_any_token_raises_and_writes_nothing(store):
    token = OAuthToken(user_signature=UserSignature("a@zylker.com:1"))

    with pytest.raises(SDKException) as caught:
        store.save_token(token)

    assert caught.value.code == "TOKEN_STORE"
    assert count_rows(store) == 0


def test_save_never_overwrites_the_row_that_holds_a_clashing_token(store):
    # On MySQL, ON DUPLICATE KEY UPDATE fires on any unique key: b's save
    # clashes with a's refresh token and must not update a's row.
    store.save_token(user_token("a@zylker.com:1"))
    intruder = user_token("b@zylker.com:1", refresh_token="refresh-a@zylker.com:1")

    with pytest.raises(SDKException) as caught:
        store.save_token(intruder)

    assert caught.value.code == "TOKEN_STORE"
    assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)
    assert count_rows(store) == 1
    kept = store.find_token(lookup("a@zylker.com:1"))
    assert kept.get_access_token() == "access-a@zylker.com:1"
    assert store.find_token(lookup("b@zylker.com:1")) is None


def test_save_by_id_with_another_users_name_changes_neither_row(store):
    a = user_token("a@zylker.com:1")
    b = user_token("b@zylker.com:1")
    store.save_token(a)
    store.save_token(b)
    clash = user_token("b@zylker.com:1", refresh_token="r", access_token="x")
    clash.set_id(a.get_id())

    with pytest.raises(SDKException):
        store.save_token(clash)

    assert store.find_token_by_id(a.get_id()).get_access_token() == (
        "access-a@zylker.com:1"
    )
    assert store.find_token_by_id(b.get_id()).get_access_token() == (
        "access-b@zylker.com:1"
    )


def test_save_without_returning_reads_back_the_existing_rows_id(store):
    # The path MySQL 8 takes, having no INSERT ... RETURNING.
    first = user_token("a@zylker.com:1")
    store.save_token(first)
    store._returning = False
    again = user_token("a@zylker.com:1", access_token="access-new")
    new_user = user_token("b@zylker.com:1")

    store.save_token(again)
    store.save_token(new_user)

    assert again.get_id() == first.get_id()
    assert store.find_token_by_id(
        new_user.get_id()
    ).get_user_signature().get_name() == ("b@zylker.com:1")


def test_expiry_time_comes_back_as_a_string_of_epoch_milliseconds(store):
    store.save_token(user_token("a@zylker.com:1", expiry_time="1893456000123"))

    found = store.find_token(lookup("a@zylker.com:1"))

    assert found.get_expires_in() == "1893456000123"
    assert len(found.get_expires_in()) == 13


def test_expiry_time_that_is_not_a_number_is_refused(store):
    with pytest.raises(SDKException):
        store.save_token(user_token("a@zylker.com:1", expiry_time="soon"))

    assert count_rows(store) == 0


# delete_token, delete_tokens, get_tokens


def test_delete_token_removes_only_that_row(store):
    a = user_token("a@zylker.com:1")
    b = user_token("b@zylker.com:1")
    store.save_token(a)
    store.save_token(b)

    store.delete_token(a.get_id())

    assert store.find_token(lookup("a@zylker.com:1")) is None
    assert store.find_token(lookup("b@zylker.com:1")) is not None


def test_delete_token_with_an_unknown_id_is_not_an_error(store):
    store.save_token(user_token("a@zylker.com:1"))

    store.delete_token("no-such-id")

    assert count_rows(store) == 1


def test_delete_tokens_removes_every_row(store):
    for n in range(3):
        store.save_token(user_token(f"u{n}@zylker.com:1"))

    store.delete_tokens()

    assert store.get_tokens() == []


def test_get_tokens_returns_every_row_fully_populated(store):
    names = {f"u{n}@zylker.com:1" for n in range(3)}
    for name in names:
        store.save_token(user_token(name))

    tokens = store.get_tokens()

    assert {t.get_user_signature().get_name() for t in tokens} == names
    for token in tokens:
        assert (
            token.get_refresh_token()
            == f"refresh-{token.get_user_signature().get_name()}"
        )
        assert token.get_expires_in() == "1893456000000"


# User names are data


def test_sixty_users_are_each_found(store):
    # The SDK's DBStore and the SQLite sample lose every user after the 10th.
    names = [f"user{n}@zylker.com:42" for n in range(60)]
    for name in names:
        store.save_token(user_token(name))

    for name in names:
        found = store.find_token(lookup(name))
        assert found is not None, name
        assert found.get_refresh_token() == f"refresh-{name}"
    assert count_rows(store) == 60


HOSTILE_NAMES = [
    "o'brien@zylker.com:1",
    'dq"uote@zylker.com:1',
    "back\\slash@zylker.com:1",
    "percent%@zylker.com:1",
    "%",
    "under_score@zylker.com:1",
    "_",
    "ünïcødé✓名前@zylker.com:1",
    "x' or '1'='1",
    "x'; DROP TABLE oauthtoken; --",
    "a@zylker.com:1 ",
    "A@ZYLKER.COM:1",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_user_name_is_stored_and_found_as_data(store, name):
    store.save_token(user_token("a@zylker.com:1"))
    store.save_token(user_token(name))

    found = store.find_token(lookup(name))

    assert found.get_refresh_token() == f"refresh-{name}"
    assert found.get_user_signature().get_name() == name
    assert store.find_token(lookup("a@zylker.com:1")).get_refresh_token() == (
        "refresh-a@zylker.com:1"
    )
    assert count_rows(store) == 2


# Threads


def test_threads_sharing_one_store_each_keep_their_tokens(store):
    errors = []

    def work(n: int) -> None:
        try:
            for round_number in range(10):
                name = f"t{n}@zylker.com:1"
                store.save_token(user_token(name, access_token=f"a{n}-{round_number}"))
                assert store.find_token(lookup(name)).get_access_token() == (
                    f"a{n}-{round_number}"
                )
        except Exception as err:  # collected, so the test can report it
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert count_rows(store) == 8


def test_in_memory_sqlite_is_one_database_shared_by_threads():
    store = SQLAlchemyTokenStore("sqlite://")
    errors = []

    def work(n: int) -> None:
        try:
            store.save_token(user_token(f"t{n}@zylker.com:1"))
        except Exception as err:  # collected, so the test can report it
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(store.get_tokens()) == 8


# Statements sent


def test_find_token_sends_one_statement(store, statements):
    store.save_token(user_token("a@zylker.com:1"))
    statements.clear()

    store.find_token(lookup("a@zylker.com:1"))

    assert len(statements) == 1


def test_save_token_sends_one_upsert(store, statements):
    store.save_token(user_token("a@zylker.com:1"))
    statements.clear()

    store.save_token(user_token("a@zylker.com:1", access_token="access-new"))

    assert len(statements) == 1
    assert statements.statements[0].lstrip().upper().startswith("INSERT")


def test_save_token_without_returning_sends_an_upsert_and_one_select(store, statements):
    store.save_token(user_token("a@zylker.com:1"))
    store._returning = False
    statements.clear()

    store.save_token(user_token("a@zylker.com:1", access_token="access-new"))

    assert len(statements) == 2
