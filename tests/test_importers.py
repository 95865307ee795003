"""Importing the SDK's FileStore CSV and DBStore table: idempotent, reported."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import require_server
from test_adopt import DBSTORE_DDL, EXPIRY, dbstore_table, sdk_rows
from tokens import lookup, user_token
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.api.authenticator.store.file_store import FileStore
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.importers import import_db_store, import_file_store

HEADER = (
    "id,user_name,client_id,client_secret,refresh_token,access_token,"
    "grant_token,expiry_time"
)


def sdk_file_store(path, users: int = 12) -> None:
    """Write a FileStore file with the SDK's own FileStore class."""
    file_store = FileStore(str(path))
    for n in range(1, users + 1):
        token = user_token(f"user{n}@zylker.com:1", expiry_time=str(EXPIRY + n))
        token.set_api_domain("https://www.zohoapis.eu")
        file_store.save_token(token)
    # A token saved before the SDK knew its user: found by its grant token.
    file_store.save_token(
        OAuthToken(
            client_id="client-id",
            client_secret="client-secret",
            grant_token="1000.grant.unnamed",
        )
    )


def write_csv(path, *lines: str) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def counts(report) -> tuple[int, int, int]:
    return report.imported, report.updated, len(report.skipped)


def test_file_store_imported_twice_updates_instead_of_duplicating(
    database_url, tmp_path
):
    path = tmp_path / "tokens.csv"
    sdk_file_store(path)
    store = SQLAlchemyTokenStore(database_url)

    first = import_file_store(store, path)
    second = import_file_store(store, path)

    assert counts(first) == (13, 0, 0)
    assert counts(second) == (0, 13, 0)
    tokens = store.get_tokens()
    assert len(tokens) == 13
    found = store.find_token(lookup("user7@zylker.com:1"))
    assert found.get_refresh_token() == "refresh-user7@zylker.com:1"
    assert found.get_expires_in() == str(EXPIRY + 7)
    assert found.get_api_domain() == "https://www.zohoapis.eu"
    # The SDK's ids are kept, so an application that stored them still works.
    assert found.get_id() == "7"
    assert store.find_token_by_id("13").get_grant_token() == "1000.grant.unnamed"
    store.dispose()


@pytest.mark.parametrize("redirect", ["redirect_uri", "redirect_url"])
@pytest.mark.parametrize("with_api_domain", [True, False])
def test_every_file_store_header_is_read(tmp_path, redirect, with_api_domain):
    header = f"{HEADER},{redirect}" + (",api_domain" if with_api_domain else "")
    row = "1,a@zylker.com:1,cid,secret,refresh-a,access-a,,1893456000000,https://r"
    path = tmp_path / "tokens.csv"
    write_csv(
        path, header, row + (",https://www.zohoapis.in" if with_api_domain else "")
    )
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")

    assert counts(import_file_store(store, path)) == (1, 0, 0)

    found = store.find_token(lookup("a@zylker.com:1"))
    assert found.get_redirect_url() == "https://r"
    assert found.get_refresh_token() == "refresh-a"
    assert found.get_grant_token() is None
    expected_domain = "https://www.zohoapis.in" if with_api_domain else None
    assert found.get_api_domain() == expected_domain
    store.dispose()


def test_rows_without_a_token_are_skipped_with_their_line(tmp_path):
    path = tmp_path / "tokens.csv"
    write_csv(
        path,
        f"{HEADER},redirect_uri,api_domain",
        "1,a@zylker.com:1,cid,secret,refresh-a,,,1893456000000,,",
        "",
        "2,b@zylker.com:1,cid,secret,,,,,,",
        ",,cid,secret,refresh-c,,,,,",
    )
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")

    report = import_file_store(store, path)

    assert counts(report) == (1, 0, 2)
    assert [(row.where, row.reason) for row in report.skipped] == [
        ("line 4", "it holds no refresh, access or grant token"),
        ("line 5", "it has neither a user name nor an id"),
    ]
    assert report.describe()[-1].endswith(
        "3 rows read, 1 imported, 0 updated, 2 skipped."
    )
    store.dispose()


def test_of_duplicate_users_in_a_file_the_latest_expiry_is_imported(tmp_path):
    path = tmp_path / "tokens.csv"
    write_csv(
        path,
        f"{HEADER},redirect_uri,api_domain",
        "1,a@zylker.com:1,cid,secret,refresh-new,,,1893456000000,,",
        "2,a@zylker.com:1,cid,secret,refresh-old,,,1700000000000,,",
    )
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")

    report = import_file_store(store, path)

    assert counts(report) == (1, 0, 1)
    assert report.skipped[0].where == "line 3"
    assert "line 2" in report.skipped[0].reason
    found = store.find_token(lookup("a@zylker.com:1"))
    assert found.get_refresh_token() == "refresh-new"
    store.dispose()


def test_a_stored_token_that_expires_later_is_not_overwritten(tmp_path):
    path = tmp_path / "tokens.csv"
    write_csv(
        path,
        f"{HEADER},redirect_uri,api_domain",
        "1,a@zylker.com:1,cid,secret,refresh-old,access-old,,1700000000000,,",
    )
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")
    store.save_token(user_token("a@zylker.com:1", expiry_time="1893456000000"))

    report = import_file_store(store, path)

    assert counts(report) == (0, 0, 1)
    assert "expires later" in report.skipped[0].reason
    found = store.find_token(lookup("a@zylker.com:1"))
    assert found.get_access_token() == "access-a@zylker.com:1"
    store.dispose()


def test_a_new_user_whose_id_is_taken_gets_a_new_id(tmp_path):
    path = tmp_path / "tokens.csv"
    write_csv(
        path,
        f"{HEADER},redirect_uri,api_domain",
        "1,b@zylker.com:1,cid,secret,refresh-b,,,1893456000000,,",
    )
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")
    taken = user_token("a@zylker.com:1")
    taken.set_id("1")
    store.save_token(taken)

    assert counts(import_file_store(store, path)) == (1, 0, 0)
    assert counts(import_file_store(store, path)) == (0, 1, 0)

    found = store.find_token(lookup("b@zylker.com:1"))
    assert found.get_id() != "1"
    assert store.find_token_by_id("1").get_refresh_token() == "refresh-a@zylker.com:1"
    assert len(store.get_tokens()) == 2
    store.dispose()


def test_an_unnamed_row_never_overwrites_another_users_token(tmp_path):
    path = tmp_path / "tokens.csv"
    write_csv(
        path,
        f"{HEADER},redirect_uri,api_domain",
        "1,,cid,secret,,,1000.grant.x,,,",
    )
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")
    taken = user_token("a@zylker.com:1")
    taken.set_id("1")
    store.save_token(taken)

    report = import_file_store(store, path)

    assert counts(report) == (0, 0, 1)
    assert "'a@zylker.com:1'" in report.skipped[0].reason
    assert store.find_token_by_id("1").get_grant_token() is None
    store.dispose()


def test_a_row_whose_token_is_stored_for_another_user_is_skipped(
    database_url, tmp_path
):
    path = tmp_path / "tokens.csv"
    write_csv(
        path,
        f"{HEADER},redirect_uri,api_domain",
        "1,b@zylker.com:1,cid,secret,refresh-b,,,1893456000000,,",
        "2,c@zylker.com:1,cid,secret,refresh-a@zylker.com:1,,,1893456000000,,",
    )
    store = SQLAlchemyTokenStore(database_url)
    store.save_token(user_token("a@zylker.com:1"))

    report = import_file_store(store, path)

    assert counts(report) == (1, 0, 1)
    assert report.skipped[0].where == "line 3"
    assert "already stored on another row" in report.skipped[0].reason
    assert store.find_token(lookup("c@zylker.com:1")) is None
    assert len(store.get_tokens()) == 2
    store.dispose()


def test_skipped_rows_are_reported_in_the_files_order(tmp_path):
    path = tmp_path / "tokens.csv"
    write_csv(
        path,
        f"{HEADER},redirect_uri,api_domain",
        "1,a@zylker.com:1,cid,secret,refresh-old,,,1700000000000,,",
        "2,b@zylker.com:1,cid,secret,,,,,,",
        "3,a@zylker.com:1,cid,secret,refresh-new,,,1893456000000,,",
    )
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")

    report = import_file_store(store, path)

    assert [row.where for row in report.skipped] == ["line 2", "line 3"]
    store.dispose()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([f"{HEADER},redirect_uri,api_domain", "1,a,b"], "line 3: expected 10 fields"),
        ([f"{HEADER},redirect_uri,api_domain", "", '1,"a'], "line 4"),
        (["id,name,token"], "line 1: not the SDK's FileStore header"),
        ([], "is empty"),
    ],
)
def test_a_malformed_file_names_its_line_and_imports_nothing(tmp_path, lines, message):
    path = tmp_path / "tokens.csv"
    good = "1,a@zylker.com:1,cid,secret,refresh-a,,,1893456000000,,"
    path.write_text("\n".join([*lines[:1], good, *lines[1:]]) if lines else "")
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")

    with pytest.raises(SDKException) as caught:
        import_file_store(store, path)

    assert message in caught.value.error_message
    assert "refresh-a" not in caught.value.error_message
    assert store.get_tokens() == []
    store.dispose()


@pytest.fixture
def mysql_dbstore(request):
    """A live DBStore table named ``legacy_tokens`` on the MySQL server."""
    url = require_server("mysql")
    engine = sa.create_engine(url)
    table = sa.table("legacy_tokens", *(sa.column(c.name) for c in dbstore_table.c))
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS legacy_tokens"))
        connection.execute(
            sa.text(DBSTORE_DDL.replace("TABLE oauthtoken", "TABLE legacy_tokens"))
        )
        connection.execute(table.insert(), sdk_rows())
    yield url
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE legacy_tokens"))
    engine.dispose()


def test_db_store_imported_twice_updates_instead_of_duplicating(
    database_url, mysql_dbstore
):
    store = SQLAlchemyTokenStore(database_url)

    first = import_db_store(store, mysql_dbstore, table="legacy_tokens")
    second = import_db_store(store, mysql_dbstore, table="legacy_tokens")

    # Of sdk_rows' twelve, the two duplicates are skipped as in adoption.
    assert counts(first) == (10, 0, 2)
    assert counts(second) == (0, 10, 2)
    assert {row.where for row in first.skipped} == {"id '3'", "id '12'"}
    assert first.source == f"legacy_tokens at {mysql_dbstore}"
    assert len(store.get_tokens()) == 10
    found = store.find_token(lookup("user2@zylker.com:1"))
    assert found.get_id() == "2"
    assert found.get_expires_in() == str(EXPIRY + 2)
    assert store.find_token(lookup("zoë@zylker.com:1")).get_id() == "5"
    store.dispose()


def test_db_store_table_of_this_package_can_be_a_source(tmp_path):
    source = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'from.db'}")
    source.save_token(user_token("a@zylker.com:1"))
    target = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")

    report = import_db_store(target, source.engine)

    assert counts(report) == (1, 0, 0)
    assert target.find_token(lookup("a@zylker.com:1")) is not None
    source.dispose()
    target.dispose()


def test_db_store_errors_name_the_table_and_never_the_password(tmp_path):
    store = SQLAlchemyTokenStore(f"sqlite:///{tmp_path / 'to.db'}")
    empty = f"sqlite:///{tmp_path / 'from.db'}"
    engine = sa.create_engine(empty)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE other (id varchar(10))"))
    engine.dispose()

    with pytest.raises(SDKException) as missing:
        import_db_store(store, empty, table="nothing")
    with pytest.raises(SDKException) as wrong:
        import_db_store(store, empty, table="other")
    with pytest.raises(SDKException) as unreachable:
        import_db_store(
            store, "mysql+pymysql://app:hunter2@127.0.0.1:9/db?connect_timeout=2"
        )

    assert "no table 'nothing'" in missing.value.error_message
    assert "has no user_name, client_id" in wrong.value.error_message
    assert "hunter2" not in unreachable.value.error_message
    assert "127.0.0.1" in unreachable.value.error_message
    store.dispose()
