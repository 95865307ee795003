"""Tokens encrypted at rest, found by keyed digests, and rotated between keys."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from conftest import StatementLog
from tokens import lookup, user_token
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException
from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from zoho_sa_store import SQLAlchemyTokenStore, upgrade
from zoho_sa_store.cli import main
from zoho_sa_store.encryption import generate_key, plain_digest
from zoho_sa_store.migrate import downgrade
from zoho_sa_store.testing import LoopbackZoho

pytest_plugins = ["zoho_sa_store.pytest_plugin"]

K1 = generate_key()
K2 = generate_key()
WRONG = generate_key()

NAMES = [f"user{n}@zylker.com:1" for n in range(7)]
SECRETS = ("client-secret-at-rest", "refresh-", "access-", "grant-")


def secret_token(name: str) -> OAuthToken:
    """A user's token whose every secret value is recognisable in a dump."""
    return user_token(
        name,
        client_secret="client-secret-at-rest",
        grant_token=f"grant-{name}",
    )


@pytest.fixture
def open_store(database_url) -> Iterator[Callable[..., SQLAlchemyTokenStore]]:
    """Open stores on the test database with the given keys; closed after."""
    stores: list[SQLAlchemyTokenStore] = []

    def opener(keys: list[str] | None) -> SQLAlchemyTokenStore:
        store = SQLAlchemyTokenStore(database_url, encryption_keys=keys)
        stores.append(store)
        return store

    yield opener
    for store in stores:
        store.dispose()


@pytest.fixture
def encrypted_store(open_store) -> SQLAlchemyTokenStore:
    return open_store([K1])


def raw_rows(store: SQLAlchemyTokenStore) -> list[dict[str, str | None]]:
    """``SELECT *`` over the table, every value as text, as a dump shows it."""
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM oauthtoken ORDER BY id"))
        return [
            {name: _text(value) for name, value in row._mapping.items()} for row in rows
        ]


def _text(value) -> str | None:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    return None if value is None else str(value)


def dump(store: SQLAlchemyTokenStore) -> str:
    return repr(raw_rows(store))


def find_by_every_key(store: SQLAlchemyTokenStore, name: str) -> list[OAuthToken]:
    """Look one user's token up by user name, access, grant and refresh token."""
    credentials = {"client_id": "client-id", "client_secret": "client-secret-at-rest"}
    return [
        store.find_token(lookup(name)),
        store.find_token(OAuthToken(access_token=f"access-{name}")),
        store.find_token(OAuthToken(grant_token=f"grant-{name}", **credentials)),
        store.find_token(OAuthToken(refresh_token=f"refresh-{name}", **credentials)),
    ]


def assert_every_token_found(store: SQLAlchemyTokenStore, names=NAMES) -> None:
    for name in names:
        for found in find_by_every_key(store, name):
            assert found is not None, name
            assert found.get_user_signature().get_name() == name
            assert found.get_refresh_token() == f"refresh-{name}"
            assert found.get_access_token() == f"access-{name}"
            assert found.get_grant_token() == f"grant-{name}"
            assert found.get_client_secret() == "client-secret-at-rest"


def key_mismatch(caught: pytest.ExceptionInfo[SDKException]) -> bool:
    error = caught.value
    return error.code == "TOKEN_STORE" and "key does not match" in str(error)


# What is stored


def test_raw_select_shows_no_token_value_and_no_client_secret(encrypted_store):
    for name in NAMES[:3]:
        encrypted_store.save_token(secret_token(name))

    text = dump(encrypted_store)

    for secret in SECRETS:
        assert secret not in text
    assert "user0@zylker.com:1" in text  # the user name is not a secret
    # Nor can a digest be matched against a guessed token without the key.
    for name in NAMES[:3]:
        for token in (f"refresh-{name}", f"access-{name}", f"grant-{name}"):
            assert plain_digest(token) not in text


def test_rows_record_the_first_keys_id_and_never_a_key(open_store):
    store = open_store([K2, K1])
    store.save_token(secret_token(NAMES[0]))

    (row,) = raw_rows(store)

    assert row["key_id"] == store._codec.write_key_id
    assert len(row["key_id"]) == 16
    for key in (K1, K2):
        assert key not in repr(row)


def test_every_lookup_still_works_with_encryption(encrypted_store):
    for name in NAMES:
        encrypted_store.save_token(secret_token(name))

    assert_every_token_found(encrypted_store)
    assert encrypted_store.find_token(lookup("nobody@zylker.com:1")) is None
    assert encrypted_store.find_token(OAuthToken(access_token="access-x")) is None


def test_token_read_back_by_id_and_in_the_list_is_decrypted(encrypted_store):
    saved = secret_token(NAMES[0])
    encrypted_store.save_token(saved)

    by_id = encrypted_store.find_token_by_id(saved.get_id())
    (listed,) = encrypted_store.get_tokens()

    for token in (by_id, listed):
        assert token.get_refresh_token() == f"refresh-{NAMES[0]}"
        assert token.get_client_secret() == "client-secret-at-rest"
        assert token.get_expires_in() == "1893456000000"


def test_saving_a_user_again_updates_its_one_encrypted_row(encrypted_store):
    encrypted_store.save_token(secret_token(NAMES[0]))

    encrypted_store.save_token(user_token(NAMES[0], access_token="access-new"))

    assert len(raw_rows(encrypted_store)) == 1
    found = encrypted_store.find_token(OAuthToken(access_token="access-new"))
    assert found.get_refresh_token() == f"refresh-{NAMES[0]}"
    assert "access-new" not in dump(encrypted_store)


def test_clashing_token_on_another_row_is_still_refused(encrypted_store):
    encrypted_store.save_token(secret_token(NAMES[0]))
    intruder = user_token(NAMES[1], refresh_token=f"refresh-{NAMES[0]}")

    with pytest.raises(SDKException) as caught:
        encrypted_store.save_token(intruder)

    assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)
    assert len(raw_rows(encrypted_store)) == 1
    assert encrypted_store.find_token(lookup(NAMES[1])) is None


def test_no_key_token_or_secret_in_messages_logs_or_repr(open_store, caplog):
    caplog.set_level(logging.DEBUG)
    store = open_store([K1])
    store.save_token(secret_token(NAMES[0]))
    store.find_token(lookup(NAMES[0]))
    wrong = open_store([WRONG])

    with pytest.raises(SDKException) as caught:
        wrong.save_token(secret_token(NAMES[0]))

    shown = caplog.text + str(caught.value) + repr(store) + repr(wrong)
    for value in (*SECRETS, K1, WRONG):
        assert value not in shown
    assert "encryption_keys=1" in repr(store)


# Statements sent


def test_find_token_with_encryption_sends_one_statement(open_store):
    store = open_store([K2, K1])
    store.save_token(secret_token(NAMES[0]))
    statements = StatementLog(store.engine)

    find_by_every_key(store, NAMES[0])

    statements.close()
    assert len(statements) == 4


def test_save_token_with_encryption_sends_one_upsert(open_store):
    store = open_store([K2, K1])
    store.save_token(secret_token(NAMES[0]))
    refresh_only = OAuthToken(
        client_id="client-id", client_secret="s", refresh_token="refresh-r"
    )
    store.save_token(refresh_only)
    statements = StatementLog(store.engine)

    store.save_token(user_token(NAMES[0], access_token="access-new"))
    store.save_token(
        OAuthToken(client_id="client-id", client_secret="s", refresh_token="refresh-r")
    )

    statements.close()
    assert len(statements) == 2
    assert statements.statements[0].lstrip().upper().startswith("INSERT")


def test_save_with_encryption_without_returning_sends_an_upsert_and_one_select(
    open_store,
):
    # The path MySQL 8 takes, having no INSERT ... RETURNING.
    store = open_store([K2, K1])
    store.save_token(secret_token(NAMES[0]))
    store._returning = False
    statements = StatementLog(store.engine)

    store.save_token(user_token(NAMES[0], access_token="access-new"))

    statements.close()
    assert len(statements) == 2
    assert store.find_token(OAuthToken(access_token="access-new")) is not None


# Rotation


def test_rotation_from_k1_to_k2_k1_to_k2_keeps_every_token_readable(open_store):
    old = open_store([K1])
    for name in NAMES:
        old.save_token(secret_token(name))
    during = open_store([K2, K1])

    report = during.rotate_keys(batch_size=3, progress=False)

    assert (report.rows, report.rewritten) == (len(NAMES), len(NAMES))
    new = open_store([K2])
    assert_every_token_found(new)
    assert {row["key_id"] for row in raw_rows(new)} == {new._codec.write_key_id}
    for secret in SECRETS:
        assert secret not in dump(new)


def test_tokens_are_found_by_every_key_between_rotation_batches(open_store):
    old = open_store([K1])
    for name in NAMES:
        old.save_token(secret_token(name))
    app = open_store([K2, K1])
    rotator = open_store([K2, K1])
    checked = []

    def between_batches(done: int, total: int) -> None:
        # Part of the table is under K2 and part under K1 right now.
        assert_every_token_found(app)
        app.save_token(secret_token(NAMES[0]))
        checked.append((done, total))

    rotator.rotate_keys(batch_size=2, progress=between_batches)

    assert checked == [(2, 7), (4, 7), (6, 7), (7, 7)]
    assert_every_token_found(open_store([K2]))


def test_rotation_locks_each_batch_before_reading_it(open_store):
    # So that a save the application makes meanwhile waits for the batch
    # instead of being overwritten with the value the batch read.
    store = open_store([K2, K1])
    store.save_token(secret_token(NAMES[0]))
    statements = StatementLog(store.engine)

    store.rotate_keys(batch_size=1, progress=False)

    statements.close()
    batch_reads = [s for s in statements.statements if "LIMIT" in s.upper()]
    assert len(batch_reads) == 2  # one row, then an empty batch
    if store.engine.dialect.name == "sqlite":
        assert statements.statements.count("BEGIN IMMEDIATE") == 2
    else:
        assert all("FOR UPDATE" in read.upper() for read in batch_reads)


def test_interrupted_rotation_finishes_when_run_again(open_store):
    old = open_store([K1])
    for name in NAMES:
        old.save_token(secret_token(name))
    rotator = open_store([K2, K1])

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotator.rotate_keys(batch_size=3, progress=interrupt)
    again = rotator.rotate_keys(batch_size=3, progress=False)
    once_more = rotator.rotate_keys(batch_size=3, progress=False)

    assert (again.rows, again.rewritten) == (7, 4)
    assert (once_more.rows, once_more.rewritten) == (7, 0)
    assert_every_token_found(open_store([K2]))


def test_rotation_encrypts_rows_written_before_encryption(open_store):
    plain = open_store(None)
    for name in NAMES[:3]:
        plain.save_token(secret_token(name))
    assert "refresh-" in dump(plain)

    report = open_store([K1]).rotate_keys(progress=False)

    assert report.rewritten == 3
    text = dump(plain)
    for secret in SECRETS:
        assert secret not in text
    # Nor does a plain digest remain that a guessed token could be matched to.
    assert plain_digest(f"refresh-{NAMES[0]}") not in text
    assert_every_token_found(open_store([K1]), NAMES[:3])


def test_rotation_stops_on_a_token_stored_twice_under_two_keys(open_store):
    # Under two keys the database cannot see that both rows hold refresh-r.
    first = open_store([K1])
    first.save_token(secret_token(NAMES[0]))
    first.save_token(user_token(NAMES[1], refresh_token="refresh-r"))
    second = open_store([K2, K1])
    second.save_token(user_token(NAMES[2], refresh_token="refresh-r"))
    before = raw_rows(second)

    with pytest.raises(SDKException) as caught:
        second.rotate_keys(batch_size=10, progress=False)

    assert "same refresh, access or grant token" in str(caught.value)
    assert "refresh-r" not in str(caught.value)
    assert raw_rows(second) == before


def test_rotation_without_keys_is_refused(open_store):
    with pytest.raises(SDKException) as caught:
        open_store(None).rotate_keys()

    assert key_mismatch(caught)


# Rows written before encryption


def test_rows_written_before_encryption_are_read_and_encrypted_on_next_save(
    open_store,
):
    plain = open_store(None)
    for name in NAMES[:2]:
        plain.save_token(secret_token(name))
    encrypted = open_store([K1])

    assert_every_token_found(encrypted, NAMES[:2])
    encrypted.save_token(secret_token(NAMES[0]))

    rows = {row["user_name"]: repr(row) for row in raw_rows(encrypted)}
    assert "refresh-" not in rows[NAMES[0]]
    assert "refresh-" in rows[NAMES[1]]
    assert len(rows) == 2
    assert_every_token_found(encrypted, NAMES[:2])


def test_partly_saved_row_keeps_its_plain_values_readable(open_store):
    open_store(None).save_token(secret_token(NAMES[0]))
    encrypted = open_store([K1])

    encrypted.save_token(
        OAuthToken(
            user_signature=UserSignature(NAMES[0]), access_token=f"access-{NAMES[0]}"
        )
    )

    (row,) = raw_rows(encrypted)
    assert row["access_token"] != f"access-{NAMES[0]}"
    assert row["grant_token"] == f"grant-{NAMES[0]}"
    assert_every_token_found(encrypted, NAMES[:1])


def test_save_by_refresh_token_updates_the_row_found_under_an_older_key(
    open_store,
):
    def by_refresh_token(access_token: str) -> OAuthToken:
        return OAuthToken(
            client_id="client-id",
            client_secret="s",
            refresh_token="refresh-r",
            access_token=access_token,
        )

    open_store(None).save_token(by_refresh_token("access-1"))
    open_store([K1]).save_token(by_refresh_token("access-2"))
    store = open_store([K2, K1])

    store.save_token(by_refresh_token("access-3"))

    (row,) = raw_rows(store)
    assert row["key_id"] == store._codec.write_key_id
    found = open_store([K2]).find_token(OAuthToken(access_token="access-3"))
    assert found.get_refresh_token() == "refresh-r"


# A wrong key


def test_wrong_key_is_a_clear_error_and_changes_nothing(open_store):
    right = open_store([K1])
    for name in NAMES[:3]:
        right.save_token(secret_token(name))
    before = raw_rows(right)
    wrong = open_store([WRONG])
    saved_id = before[0]["id"]

    attempts = [
        lambda: wrong.find_token(lookup(NAMES[0])),
        lambda: wrong.find_token_by_id(saved_id),
        lambda: wrong.get_tokens(),
        lambda: wrong.save_token(secret_token(NAMES[0])),
        lambda: wrong.save_token(user_token(NAMES[1], access_token="x")),
        lambda: wrong.save_token(OAuthToken(id=saved_id, access_token="x")),
        lambda: wrong.rotate_keys(progress=False),
        lambda: open_store([WRONG, K2]).rotate_keys(progress=False),
    ]
    for attempt in attempts:
        with pytest.raises(SDKException) as caught:
            attempt()
        assert key_mismatch(caught), caught.value

    # A lookup by token finds nothing: the digest is under the wrong key.
    assert wrong.find_token(OAuthToken(access_token=f"access-{NAMES[0]}")) is None
    assert raw_rows(right) == before
    assert_every_token_found(right, NAMES[:3])


def test_wrong_key_save_without_returning_changes_nothing(open_store):
    # The path MySQL 8 takes, having no INSERT ... RETURNING.
    right = open_store([K1])
    right.save_token(secret_token(NAMES[0]))
    before = raw_rows(right)
    wrong = open_store([WRONG])
    wrong.find_token(lookup("nobody@zylker.com:1"))  # settles _returning
    wrong._returning = False

    with pytest.raises(SDKException) as caught:
        wrong.save_token(secret_token(NAMES[0]))

    assert key_mismatch(caught)
    assert raw_rows(right) == before


def test_store_without_keys_refuses_encrypted_rows(open_store):
    open_store([K1]).save_token(secret_token(NAMES[0]))
    plain = open_store(None)
    before = raw_rows(plain)

    for attempt in (
        lambda: plain.find_token(lookup(NAMES[0])),
        lambda: plain.save_token(secret_token(NAMES[0])),
    ):
        with pytest.raises(SDKException) as caught:
            attempt()
        assert key_mismatch(caught)

    assert raw_rows(plain) == before


def test_value_under_a_dropped_key_is_a_key_mismatch(open_store):
    # A rotation was skipped: K1 was dropped while a column still needed it.
    open_store([K1]).save_token(secret_token(NAMES[0]))
    open_store([K2, K1]).save_token(user_token(NAMES[0], access_token="access-2"))

    with pytest.raises(SDKException) as caught:
        open_store([K2]).find_token(lookup(NAMES[0]))

    assert key_mismatch(caught)


def test_a_key_that_is_not_a_fernet_key_is_refused_without_echoing_it():
    with pytest.raises(SDKException) as caught:
        SQLAlchemyTokenStore("sqlite://", encryption_keys=[K1, "not-a-key-hunter2"])

    assert "number 2" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(SDKException):
        SQLAlchemyTokenStore("sqlite://", encryption_keys=K1)


# Revision 0003


def test_upgrade_gives_existing_rows_digests_they_are_found_by(
    database_url, open_store
):
    url = database_url
    downgrade(url, "base")
    upgrade(url, "0002")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO oauthtoken (id, user_name, client_id, client_secret,"
                " refresh_token, access_token, grant_token, expiry_time)"
                " VALUES ('1', :name, 'client-id', 'client-secret-at-rest',"
                " :refresh, :access, :grant, 1893456000000)"
            ),
            {
                "name": NAMES[0],
                "refresh": f"refresh-{NAMES[0]}",
                "access": f"access-{NAMES[0]}",
                "grant": f"grant-{NAMES[0]}",
            },
        )
    engine.dispose()

    upgrade(url)

    assert_every_token_found(open_store(None), NAMES[:1])
    assert_every_token_found(open_store([K1]), NAMES[:1])


def test_downgrade_refuses_while_rows_are_encrypted(database_url, open_store):
    store = open_store([K1])
    store.save_token(secret_token(NAMES[0]))

    with pytest.raises(SDKException) as caught:
        downgrade(database_url, "0002")

    assert "encrypted" in str(caught.value)
    store.dispose()
    assert_every_token_found(open_store([K1]), NAMES[:1])


# The SDK


@pytest.fixture
def forget_sdk_initializer():
    # The SDK keeps its initializer in globals; a stale one would point the
    # next test at a server that has already stopped.
    yield
    Initializer.initializer = None
    Initializer.LOCAL.init = None


def initialize(zoho: LoopbackZoho, store, **token_fields) -> None:
    token = OAuthToken(
        client_id="client-id", client_secret="client-secret", **token_fields
    )
    Initializer.initialize(environment=zoho.environment, token=token, store=store)


def test_sdk_flow_works_with_encryption_on(
    open_store, loopback_zoho: LoopbackZoho, forget_sdk_initializer
):
    store = open_store([K1])
    grant_token = loopback_zoho.issue_grant_token()

    initialize(loopback_zoho, store, grant_token=grant_token)

    (saved,) = store.get_tokens()
    assert saved.get_user_signature().get_name() == "user@zylker.com:42"
    assert loopback_zoho.is_access_token_valid(saved.get_access_token())
    text = dump(store)
    for value in (grant_token, saved.get_refresh_token(), saved.get_access_token()):
        assert value not in text
    assert "client-secret" not in text

    # After a rotation, an expired access token is refreshed once and saved.
    store = open_store([K2, K1])
    store.rotate_keys(progress=False)
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE oauthtoken SET expiry_time = 1"))
    loopback_zoho.reset_counters()
    initialize(loopback_zoho, store, refresh_token=saved.get_refresh_token())

    (refreshed,) = open_store([K2]).get_tokens()
    assert loopback_zoho.calls["refresh"] == 1
    assert refreshed.get_refresh_token() == saved.get_refresh_token()
    assert refreshed.get_access_token() != saved.get_access_token()
    assert loopback_zoho.is_access_token_valid(refreshed.get_access_token())
    assert refreshed.get_access_token() not in dump(store)


# The command line


def test_generate_key_prints_a_new_key_a_store_accepts(capsys):
    assert main(["generate-key"]) == 0
    assert main(["generate-key"]) == 0

    first, second = capsys.readouterr().out.split()
    assert first != second
    SQLAlchemyTokenStore("sqlite://", encryption_keys=[first, second])


def test_rotate_keys_command_reads_the_keys_from_the_environment(
    database_url, open_store, monkeypatch, capsys
):
    old = open_store([K1])
    for name in NAMES:
        old.save_token(secret_token(name))
    monkeypatch.setenv("ZOHO_TOKEN_STORE_KEYS", f" {K2} , {K1} ")

    code = main(["rotate-keys", "--url", database_url, "--batch-size", "2"])

    assert code == 0
    assert "Rotating keys" not in capsys.readouterr().err  # not a terminal
    assert_every_token_found(open_store([K2]))


def test_rotate_keys_command_without_keys_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ZOHO_TOKEN_STORE_KEYS", raising=False)

    code = main(["rotate-keys", "--url", f"sqlite:///{tmp_path / 't.db'}"])

    error = capsys.readouterr().err
    assert code == 1
    assert error.count("\n") == 1
    assert "ZOHO_TOKEN_STORE_KEYS" in error


def test_rotate_keys_command_with_a_wrong_key_changes_nothing(
    database_url, open_store, monkeypatch, capsys
):
    right = open_store([K1])
    right.save_token(secret_token(NAMES[0]))
    before = raw_rows(right)
    monkeypatch.setenv("ZOHO_TOKEN_STORE_KEYS", f"{K2},{WRONG}")

    code = main(["rotate-keys", "--url", database_url])

    error = capsys.readouterr().err
    assert code == 1
    assert "key does not match" in error
    assert error.count("\n") == 1
    for key in (K2, WRONG):
        assert key not in error
    assert raw_rows(right) == before


def test_rotate_keys_command_draws_a_progress_bar_on_a_terminal(tmp_path):
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    store = SQLAlchemyTokenStore(url, encryption_keys=[K1])
    for name in NAMES:
        store.save_token(secret_token(name))
    store.dispose()
    controller, terminal = os.openpty()
    environment = {**os.environ, "ZOHO_TOKEN_STORE_KEYS": f"{K2},{K1}"}
    command = [sys.executable, "-m", "zoho_sa_store.cli", "rotate-keys"]
    command += ["--url", url, "--batch-size", "3"]

    with subprocess.Popen(command, stderr=terminal, env=environment) as child:
        os.close(terminal)
        shown = read_until_closed(controller)
        assert child.wait(timeout=60) == 0

    assert "Rotating keys [" in shown
    assert "3/7 rows" in shown
    assert "7/7 rows" in shown
    assert K2 not in shown


def read_until_closed(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:  # Linux reports EIO once the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(descriptor)
    return b"".join(chunks).decode("utf-8", "replace")
