"""Turning a URL into an engine: clear errors, and no secret in sight."""

from __future__ import annotations

import logging

import pytest
from tokens import lookup, user_token
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from zoho_sa_store import SQLAlchemyTokenStore


def error_of(url) -> SDKException:
    with pytest.raises(SDKException) as caught:
        SQLAlchemyTokenStore(url)
    assert caught.value.code == "TOKEN_STORE"
    return caught.value


def test_malformed_url_is_one_clear_sentence():
    error = error_of("postgresql+psycopg//user:hunter2@host/db")

    assert "malformed" in error.error_message
    assert "hunter2" not in str(error)


def test_unknown_dialect_names_the_supported_ones():
    error = error_of("oracle+nothing://user:hunter2@host/db")

    assert "unknown dialect" in error.error_message
    assert "hunter2" not in str(error)


def test_missing_driver_names_the_extra_to_install():
    error = error_of("mysql+mysqldb://user:hunter2@host/db")

    assert "zoho-sa-store[mysql]" in error.error_message
    assert "hunter2" not in str(error)


def test_missing_url_names_the_environment_variable(monkeypatch):
    monkeypatch.delenv("ZOHO_TOKEN_STORE_URL", raising=False)

    error = error_of(None)

    assert "ZOHO_TOKEN_STORE_URL" in error.error_message


def test_url_is_read_from_the_environment_when_none_is_given(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("ZOHO_TOKEN_STORE_URL", url)

    store = SQLAlchemyTokenStore()

    assert str(store.engine.url) == url


def test_repr_masks_the_database_password():
    store = SQLAlchemyTokenStore("postgresql+psycopg://app:hunter2@127.0.0.1/db")

    assert "hunter2" not in repr(store)
    assert "***" in repr(store)


def test_unreachable_server_is_a_token_store_error_with_its_cause():
    store = SQLAlchemyTokenStore(
        "postgresql+psycopg://app:hunter2@127.0.0.1:9/db?connect_timeout=2"
    )

    with pytest.raises(SDKException) as caught:
        store.find_token(lookup("a@zylker.com:1"))

    assert caught.value.code == "TOKEN_STORE"
    assert caught.value.cause is not None
    assert caught.value.__cause__ is caught.value.cause
    assert "hunter2" not in str(caught.value)


def test_no_token_reaches_a_message_or_a_log_line(store, caplog):
    caplog.set_level(logging.DEBUG)
    secret = user_token(
        "a@zylker.com:1",
        refresh_token="SECRET-REFRESH",
        access_token="SECRET-ACCESS",
        client_secret="SECRET-CLIENT",
    )
    store.save_token(secret)
    store.find_token(lookup("a@zylker.com:1"))
    store.find_token_by_id(secret.get_id())
    clash = user_token("b@zylker.com:1", refresh_token="SECRET-REFRESH")

    with pytest.raises(SDKException) as caught:
        store.save_token(clash)

    shown = caplog.text + str(caught.value) + repr(store)
    for value in ("SECRET-REFRESH", "SECRET-ACCESS", "SECRET-CLIENT"):
        assert value not in shown
