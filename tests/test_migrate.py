"""Alembic migrations: upgrade, downgrade, no drift, and shipping in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from tokens import lookup, user_token
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from zoho_sa_store import SQLAlchemyTokenStore, upgrade
from zoho_sa_store.migrate import current_revision, downgrade, head_revision
from zoho_sa_store.model import Base

ROOT = Path(__file__).resolve().parent.parent


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema_differences(url: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "include_name": _ours},
            )
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def _ours(name, type_, parent_names) -> bool:
    # Other tables in a shared database, and Alembic's version table, are
    # not part of the model.
    return type_ != "table" or name == "oauthtoken"


def test_upgrade_creates_the_table_on_an_empty_database(database_url):
    downgrade(database_url, "base")
    assert "oauthtoken" not in table_names(database_url)

    upgrade(database_url)

    assert "oauthtoken" in table_names(database_url)
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    engine.dispose()


def test_downgrade_to_base_and_upgrade_again(database_url):
    downgrade(database_url, "base")
    upgrade(database_url)
    store = SQLAlchemyTokenStore(database_url)

    store.save_token(user_token("a@zylker.com:1"))

    assert store.find_token(lookup("a@zylker.com:1")) is not None
    store.dispose()


def test_model_and_migrations_do_not_drift(database_url):
    upgrade(database_url)

    assert schema_differences(database_url) == []


def test_server_store_refuses_a_missing_table_and_names_the_command(server_url):
    database_url = server_url
    downgrade(database_url, "base")
    store = SQLAlchemyTokenStore(database_url)

    with pytest.raises(SDKException) as caught:
        store.find_token(lookup("a@zylker.com:1"))

    assert "zoho-sa-store upgrade" in str(caught.value)
    assert "oauthtoken" not in table_names(database_url)
    upgrade(database_url)
    # Once an operator has upgraded, the same store works without a restart.
    assert store.find_token(lookup("a@zylker.com:1")) is None
    store.dispose()


def test_server_store_refuses_an_outdated_table(server_url):
    database_url = server_url
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE zoho_sa_store_version SET version_num = 'older'")
        )
    store = SQLAlchemyTokenStore(database_url)
    try:
        with pytest.raises(SDKException) as caught:
            store.get_tokens()
        assert "older" in str(caught.value)
        assert "zoho-sa-store upgrade" in str(caught.value)
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE zoho_sa_store_version SET version_num = :head"),
                {"head": head_revision()},
            )
        engine.dispose()
        store.dispose()


def test_sqlite_file_is_created_and_upgraded_on_first_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    store = SQLAlchemyTokenStore(url)

    store.save_token(user_token("a@zylker.com:1"))

    assert "oauthtoken" in table_names(url)
    assert schema_differences(url) == []
    store.dispose()


def test_alembic_command_line_reads_the_url_option(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", "upgrade", "head"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )

    assert "oauthtoken" in table_names(url)


def test_wheel_ships_the_migrations_and_upgrades_outside_the_repo(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("zoho_sa_store-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "zoho_sa_store/migrations/env.py" in names
    assert "zoho_sa_store/migrations/versions/0001_create_oauthtoken.py" in names

    # Run the command from the unpacked wheel, away from the checkout.
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    url = f"sqlite:///{elsewhere / 'tokens.db'}"
    environment = {**os.environ, "PYTHONPATH": str(unpacked)}
    code = "import sys, zoho_sa_store.cli as c; sys.exit(c.main())"
    result = subprocess.run(
        [sys.executable, "-c", code, "upgrade", "--url", url],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "oauthtoken" in table_names(url)
    probe = "import zoho_sa_store; print(zoho_sa_store.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(unpacked))
