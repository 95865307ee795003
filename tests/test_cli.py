"""The ``zoho-sa-store`` command line."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_adopt import (
    create_dbstore_table,
    drop_token_tables,
    revision_of,
    sdk_rows,
)
from tokens import user_token

from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.cli import main
from zoho_sa_store.migrate import downgrade, head_revision

ROOT = Path(__file__).resolve().parent.parent

# Long enough that masking keeps their last four characters.
SECRETS = {
    "client_secret": "client-secret-7f3a9c2e41d8b6",
    "refresh_token": "1000.refresh.5d41402abc4b2a76b9719d91",
    "access_token": "1000.access.7d793037a0760186574b0282",
    "grant_token": "1000.grant.e4da3b7fbbce2345d7772b06",
}


def assert_one_line_error(captured, *fragments: str) -> None:
    """The error is one line, starts with the program's name, has no traceback."""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("zoho-sa-store: ")
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in captured.err
    for secret in SECRETS.values():
        assert secret not in captured.err + captured.out


def saved_tokens(url: str) -> SQLAlchemyTokenStore:
    """Save two users' tokens, one with every secret, and return the store."""
    store = SQLAlchemyTokenStore(url)
    full = user_token(
        "ann@zylker.com:1",
        client_id="1000.CLIENT",
        expiry_time="1893456000000",
        **SECRETS,
    )
    full.set_api_domain("https://www.zohoapis.eu")
    full.set_redirect_url("https://app.example.com/oauth")
    full.set_id("7")
    store.save_token(full)
    expired = user_token("bob@zylker.com:1", expiry_time="1000000000000")
    expired.set_id("12")
    store.save_token(expired)
    return store


def test_upgrade_then_current_shows_the_head(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    assert main(["upgrade", "--url", url]) == 0
    upgraded = capsys.readouterr().out
    assert main(["current", "--url", url]) == 0

    assert f"is at revision {head_revision()} (head)." in upgraded
    assert capsys.readouterr().out.strip() == f"{head_revision()} (head)"


def test_url_comes_from_the_environment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("ZOHO_TOKEN_STORE_URL", url)

    assert main(["upgrade"]) == 0

    assert "oauthtoken" in sa.inspect(sa.create_engine(url)).get_table_names()


def test_current_on_an_empty_database_says_so(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"

    assert main(["current", "--url", url]) == 0

    assert "none" in capsys.readouterr().out


def test_bad_url_is_one_line_on_stderr_with_a_failing_exit_code(capsys):
    code = main(["upgrade", "--url", "not a url"])

    error = capsys.readouterr().err
    assert code == 1
    assert error.count("\n") == 1
    assert "malformed" in error
    assert "Traceback" not in error


def test_unreachable_server_is_one_line_without_the_password(capsys):
    url = "postgresql+psycopg://app:hunter2@127.0.0.1:9/db?connect_timeout=2"

    code = main(["upgrade", "--url", url])

    error = capsys.readouterr().err
    assert code == 1
    assert error.count("\n") == 1
    assert "hunter2" not in error


def test_upgrade_command_prints_the_adoption_report(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'sdk.db'}"
    create_dbstore_table(url, sdk_rows())

    assert main(["upgrade", "--url", url]) == 0

    out = capsys.readouterr().out
    assert "12 rows found, 10 kept, 2 dropped" in out
    assert "Dropped row id '12' ('user2@zylker.com:1')" in out
    assert f"at revision {head_revision()} (head)" in out
    assert "0123456789abcdef" not in out


def test_table_of_another_layout_is_refused_and_left_alone(database_url, capsys):
    downgrade(database_url, "base")
    create_dbstore_table(
        database_url,
        [{"id": "1"}],
        ddl="CREATE TABLE oauthtoken (id varchar(10) NOT NULL, note varchar(20), "
        "primary key (id))",
    )
    try:
        code = main(["upgrade", "--url", database_url])

        error = capsys.readouterr().err
        assert code == 1
        assert error.count("\n") == 1
        assert error.startswith("zoho-sa-store: A table named 'oauthtoken' exists")
        assert "missing" in error and "unexpected note" in error
        assert revision_of(database_url) is None
        engine = sa.create_engine(database_url)
        with engine.connect() as connection:
            columns = sa.inspect(connection).get_columns("oauthtoken")
        engine.dispose()
        assert [column["name"] for column in columns] == ["id", "note"]
    finally:
        drop_token_tables(database_url)


def test_list_shows_a_table_for_people_with_no_token_in_it(database_url, capsys):
    saved_tokens(database_url).dispose()

    assert main(["list", "--url", database_url]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "USER",
        "NAME",
        "CLIENT",
        "ID",
        "API",
        "DOMAIN",
        "EXPIRES",
        "REFRESH",
    ]
    assert lines[1].split() == [
        "7",
        "ann@zylker.com:1",
        "1000.CLIENT",
        "https://www.zohoapis.eu",
        "2030-01-01",
        "00:00:00",
        "UTC",
        "yes",
    ]
    assert (
        lines[2].startswith("12 ") and "2001-09-09 01:46:40 UTC (expired)" in lines[2]
    )
    for secret in SECRETS.values():
        assert secret not in "\n".join(lines)
        assert secret[-4:] not in "\n".join(lines)


def test_list_json_is_for_scripts_and_has_no_token_in_it(database_url, capsys):
    saved_tokens(database_url).dispose()

    assert main(["list", "--json", "--url", database_url]) == 0

    out = capsys.readouterr().out
    items = json.loads(out)
    assert [item["id"] for item in items] == ["7", "12"]
    assert items[0] == {
        "id": "7",
        "user_name": "ann@zylker.com:1",
        "client_id": "1000.CLIENT",
        "api_domain": "https://www.zohoapis.eu",
        "expiry_time": 1893456000000,
        "expires_at": "2030-01-01T00:00:00+00:00",
        "expired": False,
        "has_refresh_token": True,
    }
    assert items[1]["expired"] is True
    for secret in SECRETS.values():
        assert secret not in out


def test_show_masks_every_token_and_secret(database_url, capsys):
    saved_tokens(database_url).dispose()

    assert main(["show", "7", "--url", database_url]) == 0

    out = capsys.readouterr().out
    assert "User name:     ann@zylker.com:1" in out
    assert "Expires:       2030-01-01 00:00:00 UTC" in out
    assert "Redirect URL:  https://app.example.com/oauth" in out
    for name, secret in SECRETS.items():
        assert secret not in out
        assert f"****{secret[-4:]}" in out, name


def test_show_json_masks_every_token_and_secret(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    saved_tokens(url).dispose()

    assert main(["show", "7", "--json", "--url", url]) == 0

    out = capsys.readouterr().out
    item = json.loads(out)
    assert item["refresh_token"] == "****" + SECRETS["refresh_token"][-4:]
    assert item["user_name"] == "ann@zylker.com:1"
    for secret in SECRETS.values():
        assert secret not in out


def test_a_short_secret_is_masked_whole(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    store = SQLAlchemyTokenStore(url)
    token = user_token("c@zylker.com:1", client_secret="tiny-pass-9")
    token.set_id("1")
    store.save_token(token)
    store.dispose()

    assert main(["show", "1", "--url", url]) == 0

    out = capsys.readouterr().out
    assert "Client secret: ****\n" in out
    assert "tiny" not in out and "ss-9" not in out


def test_show_and_delete_of_an_unknown_id_fail_with_one_line(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    saved_tokens(url).dispose()

    assert main(["show", "99", "--url", url]) == 1
    assert_one_line_error(capsys.readouterr(), "No token is stored with the id '99'")
    assert main(["delete", "99", "--url", url]) == 1
    assert_one_line_error(capsys.readouterr(), "No token is stored with the id '99'")


def test_delete_removes_one_token(database_url, capsys):
    saved_tokens(database_url).dispose()

    assert main(["delete", "7", "--url", database_url]) == 0

    assert "Deleted the token with the id '7'" in capsys.readouterr().out
    store = SQLAlchemyTokenStore(database_url)
    assert [token.get_id() for token in store.get_tokens()] == ["12"]
    store.dispose()


def test_purge_with_yes_deletes_every_token(database_url, capsys):
    saved_tokens(database_url).dispose()

    assert main(["purge", "--yes", "--url", database_url]) == 0

    assert "Deleted all 2 tokens" in capsys.readouterr().out
    store = SQLAlchemyTokenStore(database_url)
    assert store.get_tokens() == []
    store.dispose()


@pytest.mark.parametrize(
    ("answer", "code", "left"), [("y\n", 0, 0), ("n\n", 1, 2), ("", 1, 2)]
)
def test_purge_asks_first(tmp_path, capsys, monkeypatch, answer, code, left):
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    saved_tokens(url).dispose()
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))

    assert main(["purge", "--url", url]) == code

    captured = capsys.readouterr()
    assert "Delete all 2 tokens" in captured.err
    if code:
        assert "Nothing was deleted" in captured.err.splitlines()[-1]
    store = SQLAlchemyTokenStore(url)
    assert len(store.get_tokens()) == left
    store.dispose()


def test_commands_on_a_missing_sqlite_file_fail_without_creating_it(tmp_path, capsys):
    path = tmp_path / "typo.db"

    for command in (["list"], ["show", "1"], ["delete", "1"], ["purge", "--yes"]):
        assert main([*command, "--url", f"sqlite:///{path}"]) == 1
        assert_one_line_error(capsys.readouterr(), "does not exist")

    assert main(["import-db-store", f"sqlite:///{path}", "--url", "sqlite://"]) == 1
    assert_one_line_error(capsys.readouterr(), "does not exist")
    assert not path.exists()


def test_commands_on_a_server_without_the_table_name_the_upgrade(server_url, capsys):
    downgrade(server_url, "base")

    assert main(["list", "--url", server_url]) == 1

    assert_one_line_error(capsys.readouterr(), "zoho-sa-store upgrade")


EVERY_COMMAND = (
    ["upgrade"],
    ["current"],
    ["list"],
    ["show", "1"],
    ["delete", "1"],
    ["purge", "--yes"],
    ["import-file-store", "tokens.csv"],
    ["import-db-store", "sqlite://"],
)


def test_every_command_reports_an_unreachable_server_in_one_line(capsys):
    url = "postgresql+psycopg://app:hunter2@127.0.0.1:9/db?connect_timeout=2"

    for command in EVERY_COMMAND:
        assert main([*command, "--url", url]) == 1, command
        captured = capsys.readouterr()
        assert_one_line_error(captured, "127.0.0.1")
        assert "hunter2" not in captured.err


def test_every_command_reports_a_malformed_url_in_one_line(capsys):
    for command in EVERY_COMMAND:
        assert main([*command, "--url", "not a url"]) == 1, command
        assert_one_line_error(capsys.readouterr(), "malformed")


def test_a_missing_url_is_one_line_naming_the_variable(monkeypatch, capsys):
    monkeypatch.delenv("ZOHO_TOKEN_STORE_URL", raising=False)

    assert main(["list"]) == 1

    assert_one_line_error(capsys.readouterr(), "ZOHO_TOKEN_STORE_URL")


FILE_STORE = [
    "id,user_name,client_id,client_secret,refresh_token,access_token,"
    "grant_token,expiry_time,redirect_uri,api_domain",
    f"1,ann@zylker.com:1,cid,{SECRETS['client_secret']},"
    f"{SECRETS['refresh_token']},{SECRETS['access_token']},,1893456000000,,",
    "2,bob@zylker.com:1,cid,secret,,,,,,",
    f"3,,cid,secret,,,{SECRETS['grant_token']},,,",
]


def test_import_file_store_twice_ends_with_the_counts(tmp_path, capsys):
    path = tmp_path / "tokens.csv"
    path.write_text("\n".join(FILE_STORE) + "\n")
    url = f"sqlite:///{tmp_path / 'tokens.db'}"

    assert main(["import-file-store", str(path), "--url", url]) == 0
    first = capsys.readouterr()
    assert main(["import-file-store", str(path), "--url", url]) == 0
    second = capsys.readouterr()

    assert first.out.splitlines() == [
        "Skipped line 3: it holds no refresh, access or grant token.",
        f"{path}: 3 rows read, 2 imported, 0 updated, 1 skipped.",
    ]
    assert second.out.splitlines()[-1].endswith("0 imported, 2 updated, 1 skipped.")
    # Not a terminal: no progress bar.
    assert first.err == "" and second.err == ""
    for secret in SECRETS.values():
        assert secret not in first.out + second.out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "does not exist"),
        ("\n".join([*FILE_STORE[:2], "4,dan,cid"]), "line 3: expected 10 fields"),
        ("user,token\n", "line 1: not the SDK's FileStore header"),
    ],
)
def test_import_file_store_errors_are_one_line(tmp_path, capsys, content, fragment):
    path = tmp_path / "tokens.csv"
    if content is not None:
        path.write_text(content)
    url = f"sqlite:///{tmp_path / 'tokens.db'}"

    assert main(["import-file-store", str(path), "--url", url]) == 1

    assert_one_line_error(capsys.readouterr(), fragment)


def test_import_db_store_reads_the_named_table(tmp_path, capsys):
    source = f"sqlite:///{tmp_path / 'sdk.db'}"
    engine = sa.create_engine(source)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE old (id varchar(10))"))
    engine.dispose()
    create_dbstore_table(source, sdk_rows())
    engine = sa.create_engine(source)
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE oauthtoken RENAME TO sdk_tokens"))
    engine.dispose()
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    command = ["import-db-store", source, "--table", "sdk_tokens", "--url", url]

    assert main(command) == 0
    first = capsys.readouterr().out
    assert main(command) == 0
    second = capsys.readouterr().out

    assert "Skipped id '12': the same user name as id '2'" in first
    assert first.splitlines()[-1].endswith("10 imported, 0 updated, 2 skipped.")
    assert second.splitlines()[-1].endswith("0 imported, 10 updated, 2 skipped.")
    assert "0123456789abcdef" not in first + second

    assert main(["import-db-store", source, "--url", url]) == 1
    assert_one_line_error(capsys.readouterr(), "no table 'oauthtoken'", "--table")
    assert main(["import-db-store", source, "--table", "old", "--url", url]) == 1
    assert_one_line_error(capsys.readouterr(), "not a DBStore table")
    assert main(["import-db-store", "not a url", "--url", url]) == 1
    assert_one_line_error(capsys.readouterr(), "malformed")


def test_import_shows_a_progress_bar_on_a_terminal(tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text("\n".join(FILE_STORE) + "\n")
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "zoho_sa_store.cli", "import-file-store"]
            + [str(path), "--url", url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=120,
        )
    finally:
        os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal's other end is closed: all is read
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)

    assert result.returncode == 0
    assert "2 imported" in result.stdout
    assert b"Importing" in shown and b"100%" in shown and b"2/2" in shown
