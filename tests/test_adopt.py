"""Adopting a table made with the SDK's documented DBStore DDL, in place."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from test_migrate import schema_differences
from tokens import lookup, user_token
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from zoho_sa_store import SQLAlchemyTokenStore, upgrade
from zoho_sa_store.migrate import current_revision, downgrade, head_revision
from zoho_sa_store.model import oauthtoken

# The SDK's documented DDL. The same statement runs on all three databases.
DBSTORE_DDL = (
    "CREATE TABLE oauthtoken (id varchar(10) NOT NULL, user_name varchar(255), "
    "client_id varchar(255), client_secret varchar(255), "
    "refresh_token varchar(255), access_token varchar(255), "
    "grant_token varchar(255), expiry_time varchar(20), "
    "redirect_url varchar(255), api_domain varchar(255), primary key (id))"
)
COLUMNS = (
    "id",
    "user_name",
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
    "grant_token",
    "expiry_time",
    "redirect_url",
    "api_domain",
)
dbstore_table = sa.table("oauthtoken", *(sa.column(name) for name in COLUMNS))

EXPIRY = 1_893_456_000_000  # 2030-01-01


def sdk_row(row_id: str, user_name: str | None, **fields) -> dict:
    """A row as the SDK's DBStore writes it: every value a string."""
    row = {
        "id": row_id,
        "user_name": user_name,
        "client_id": "1000.CLIENTID",
        "client_secret": f"client-secret-{row_id}-0123456789abcdef",
        "refresh_token": f"1000.refresh.{row_id}.0123456789abcdef",
        "access_token": f"1000.access.{row_id}.0123456789abcdef",
        "grant_token": None,
        "expiry_time": str(EXPIRY + int(row_id)),
        "redirect_url": "https://app.example.com/oauth",
        "api_domain": "https://www.zohoapis.com",
    }
    row.update(fields)
    return row


def sdk_rows() -> list[dict]:
    """Ids "1".."12": ten users, two duplicates, two rows without a user."""
    rows = [sdk_row(str(n), f"user{n}@zylker.com:1") for n in range(1, 13)]
    # A duplicate whose later id expires earlier: the expiry decides.
    rows[11]["user_name"] = "user2@zylker.com:1"
    rows[11]["expiry_time"] = str(EXPIRY - 1)
    # A duplicate whose later id expires later.
    rows[10]["user_name"] = "user3@zylker.com:1"
    # Grant-token rows the SDK wrote without a user: empty, not duplicates.
    for index in (7, 8):
        rows[index].update(
            user_name="",
            refresh_token="",
            access_token="",
            grant_token=f"1000.grant.{index}.0123456789abcdef",
            expiry_time="",
            redirect_url="",
        )
    rows[4]["user_name"] = "zoë@zylker.com:1"  # not ASCII
    rows[5]["expiry_time"] = "soon"  # not a number
    return rows


def create_dbstore_table(url: str, rows: list[dict], ddl: str = DBSTORE_DDL) -> None:
    """Drop whatever token table is there and create the SDK's, with rows."""
    drop_token_tables(url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(ddl))
        if rows:
            connection.execute(dbstore_table.insert(), rows)
    engine.dispose()


def drop_token_tables(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for name in ("oauthtoken", "zoho_sa_store_version"):
            sa.Table(name, sa.MetaData()).drop(connection, checkfirst=True)
    engine.dispose()


def stored_rows(url: str) -> dict[str, dict]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(oauthtoken)).mappings().all()
    engine.dispose()
    return {row["id"]: dict(row) for row in rows}


def revision_of(url: str) -> str | None:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        revision = current_revision(connection)
    engine.dispose()
    return revision


@pytest.fixture
def dbstore_url(database_url):
    """The URL of a database holding the SDK's DBStore table and its rows."""
    downgrade(database_url, "base")
    create_dbstore_table(database_url, sdk_rows())
    yield database_url
    # Leave a schema the next test's fixture can upgrade, whatever happened.
    drop_token_tables(database_url)


def test_upgrade_adopts_a_dbstore_table_keeping_every_distinct_row(dbstore_url):
    adoption = upgrade(dbstore_url)

    assert adoption is not None
    assert adoption.rows_found == 12
    dropped = {
        row.id: (row.user_name, row.column, row.kept_id) for row in adoption.dropped
    }
    assert dropped == {
        "12": ("user2@zylker.com:1", "user_name", "2"),
        "3": ("user3@zylker.com:1", "user_name", "11"),
    }
    rows = stored_rows(dbstore_url)
    originals = {row["id"]: row for row in sdk_rows()}
    assert set(rows) == set(originals) - {"3", "12"}
    for row_id, row in rows.items():
        original = originals[row_id]
        for column in ("client_id", "client_secret", "api_domain"):
            assert row[column] == original[column]
        for column in ("refresh_token", "access_token", "grant_token"):
            assert row[column] == (original[column] or None)
    assert rows["2"]["expiry_time"] == EXPIRY + 2
    assert rows["5"]["user_name"] == "zoë@zylker.com:1"


def test_adoption_turns_empty_strings_and_unreadable_expiries_into_null(dbstore_url):
    adoption = upgrade(dbstore_url)

    rows = stored_rows(dbstore_url)
    assert rows["8"]["user_name"] is None and rows["9"]["user_name"] is None
    assert rows["8"]["refresh_token"] is None and rows["8"]["redirect_url"] is None
    assert rows["8"]["expiry_time"] is None
    assert rows["6"]["expiry_time"] is None
    assert adoption.unreadable_expiries == ["6"]


def test_adopted_table_matches_the_model_and_is_at_head(dbstore_url):
    upgrade(dbstore_url)

    assert schema_differences(dbstore_url) == []
    assert revision_of(dbstore_url) == head_revision()


def test_adopted_table_serves_the_sdk_and_refuses_new_duplicates(dbstore_url):
    upgrade(dbstore_url)
    store = SQLAlchemyTokenStore(dbstore_url)

    found = store.find_token(lookup("user2@zylker.com:1"))
    assert found.get_id() == "2"
    assert found.get_refresh_token() == "1000.refresh.2.0123456789abcdef"
    assert found.get_expires_in() == str(EXPIRY + 2)
    assert store.find_token(lookup("zoë@zylker.com:1")).get_id() == "5"
    assert store.find_token_by_id("10").get_user_signature().get_name() == (
        "user10@zylker.com:1"
    )
    clash = user_token("user1@zylker.com:1")
    clash.set_id("99")
    with pytest.raises(SDKException):
        store.save_token(clash)
    store.dispose()


def test_adoption_reports_each_dropped_row_by_id_and_user_without_tokens(
    tmp_path, caplog
):
    url = f"sqlite:///{tmp_path / 'sdk.db'}"
    create_dbstore_table(url, sdk_rows())

    with caplog.at_level(logging.INFO, logger="zoho_sa_store"):
        upgrade(url)

    dropped = [r.getMessage() for r in caplog.records if "Dropped row" in r.message]
    assert len(dropped) == 2
    assert any("'12'" in line and "user2@zylker.com:1" in line for line in dropped)
    assert all(
        r.name.startswith("zoho_sa_store")
        for r in caplog.records
        if "Dropped" in r.message
    )
    assert "0123456789abcdef" not in caplog.text


def test_second_upgrade_adopts_nothing_and_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'sdk.db'}"
    create_dbstore_table(url, sdk_rows())
    upgrade(url)
    before = stored_rows(url)

    assert upgrade(url) is None
    assert stored_rows(url) == before


def test_empty_dbstore_table_is_adopted(database_url):
    downgrade(database_url, "base")
    create_dbstore_table(database_url, [])
    try:
        adoption = upgrade(database_url)

        assert adoption.rows_found == 0
        assert schema_differences(database_url) == []
    finally:
        drop_token_tables(database_url)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_failed_adoption_on_postgresql_rolls_everything_back(dbstore_url):
    # A view on expiry_time stops PostgreSQL from changing its type, after
    # the duplicates were deleted in the same transaction.
    engine = sa.create_engine(dbstore_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE VIEW expiries AS SELECT id, expiry_time FROM oauthtoken")
        )
    try:
        with pytest.raises(SDKException):
            upgrade(dbstore_url)

        with engine.connect() as connection:
            count = connection.execute(
                sa.select(sa.func.count()).select_from(dbstore_table)
            ).scalar_one()
            empty_names = connection.execute(
                sa.select(sa.func.count())
                .select_from(dbstore_table)
                .where(dbstore_table.c.user_name == "")
            ).scalar_one()
            indexes = sa.inspect(connection).get_indexes("oauthtoken")
        assert count == 12
        assert empty_names == 2
        assert indexes == []
        assert revision_of(dbstore_url) is None
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP VIEW expiries"))
        engine.dispose()


@pytest.mark.parametrize("database_url", ["mysql"], indirect=True)
def test_latin1_dbstore_table_on_mysql_keeps_non_ascii_user_names(database_url):
    # The DDL names no character set: before MySQL 8 tables were latin1.
    downgrade(database_url, "base")
    create_dbstore_table(database_url, sdk_rows(), DBSTORE_DDL + " CHARSET=latin1")
    try:
        upgrade(database_url)

        store = SQLAlchemyTokenStore(database_url)
        assert store.find_token(lookup("zoë@zylker.com:1")).get_id() == "5"
        store.dispose()
        assert schema_differences(database_url) == []
    finally:
        drop_token_tables(database_url)


@pytest.mark.parametrize("database_url", ["mysql"], indirect=True)
def test_interrupted_adoption_on_mysql_finishes_when_run_again(dbstore_url):
    # MySQL commits each ALTER TABLE: simulate a run stopped after the rows
    # were cleaned and some columns and an index were changed.
    engine = sa.create_engine(dbstore_url)
    with engine.begin() as connection:
        connection.execute(
            dbstore_table.delete().where(dbstore_table.c.id.in_(["3", "12"]))
        )
        for column in ("user_name", "refresh_token", "access_token", "redirect_url"):
            connection.execute(
                dbstore_table.update()
                .where(dbstore_table.c[column] == "")
                .values({column: None})
            )
        connection.execute(
            dbstore_table.update()
            .where(dbstore_table.c.expiry_time.in_(["", "soon"]))
            .values(expiry_time=None)
        )
        connection.execute(
            sa.text("ALTER TABLE oauthtoken MODIFY user_name VARBINARY(255)")
        )
        connection.execute(sa.text("ALTER TABLE oauthtoken MODIFY expiry_time BIGINT"))
        connection.execute(
            sa.text(
                "CREATE UNIQUE INDEX ix_oauthtoken_refresh_token "
                "ON oauthtoken (refresh_token)"
            )
        )
    engine.dispose()

    adoption = upgrade(dbstore_url)

    assert adoption.rows_found == 10 and adoption.dropped == []
    assert schema_differences(dbstore_url) == []
    assert stored_rows(dbstore_url)["5"]["user_name"] == "zoë@zylker.com:1"
    assert stored_rows(dbstore_url)["8"]["user_name"] is None
