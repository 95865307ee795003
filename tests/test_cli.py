"""The ``zoho-sa-store`` command line."""

from __future__ import annotations

import sqlalchemy as sa

from zoho_sa_store.cli import main
from zoho_sa_store.migrate import head_revision


def test_upgrade_then_current_shows_the_head(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    assert main(["upgrade", "--url", url]) == 0
    assert main(["current", "--url", url]) == 0

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
