"""The ``zoho-sa-store`` command line.

Every command reads the database from ``--url`` or ``ZOHO_TOKEN_STORE_URL``.
Results go to stdout; an error is one line on stderr, ``zoho-sa-store: …``,
with exit code 1 (argparse uses 2 for a wrong command line). No output ever
holds a whole token, secret or password.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from . import display, importers, migrate
from .encryption import KEYS_VARIABLE, generate_key, keys_from_environment
from .engine import (
    URL_VARIABLE,
    DatabaseURL,
    build_engine,
    require_existing_file,
    resolve_url,
    safe_url,
)
from .errors import database_error, store_error
from .rotation import DEFAULT_BATCH_SIZE
from .store import SQLAlchemyTokenStore

T = TypeVar("T")

PROGRAM = "zoho-sa-store"


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help=f"the database URL (default: the {URL_VARIABLE} environment variable)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also log what is done"
    )


def _upgrade(arguments: argparse.Namespace) -> int:
    url = resolve_url(arguments.url)
    adoption = migrate.upgrade(url, arguments.revision)
    if adoption is not None:
        for line in adoption.describe():
            print(line)
    where, revision = _read_revision(url)
    print(f"The token table at {where} is at revision {_revision_text(revision)}.")
    return 0


def _current(arguments: argparse.Namespace) -> int:
    _, revision = _read_revision(resolve_url(arguments.url))
    if revision is None:
        print("none (the token table has not been created)")
    else:
        print(_revision_text(revision))
    return 0


def _demo(arguments: argparse.Namespace) -> int:
    from .demo import DemoFailure, run_demo

    try:
        run_demo(arguments.url)
    except DemoFailure as failure:
        print(f"zoho-sa-store: the demo failed: {failure}.", file=sys.stderr)
        return 1
    return 0


def _read_revision(url: DatabaseURL) -> tuple[str, str | None]:
    engine = build_engine(url)
    where = safe_url(engine)
    try:
        with engine.connect() as connection:
            return where, migrate.current_revision(connection)
    except SQLAlchemyError as err:
        raise database_error("read the schema revision", where, err) from err
    finally:
        if engine is not url:
            engine.dispose()


def _revision_text(revision: str | None) -> str:
    if revision is None:
        return "none"
    return f"{revision} (head)" if revision == migrate.head_revision() else revision


def _existing_store(arguments: argparse.Namespace) -> SQLAlchemyTokenStore:
    """Open the store for a command that reads or deletes, never creates.

    Refresh coordination is off: an operator looking at a token that is
    about to expire must not take the lease the application would need.
    """
    url = resolve_url(arguments.url)
    require_existing_file(url)
    return SQLAlchemyTokenStore(
        url, refresh_coordination=False, encryption_keys=keys_from_environment()
    )


def _list(arguments: argparse.Namespace) -> int:
    store = _existing_store(arguments)
    try:
        tokens = sorted(store.get_tokens(), key=display.list_order)
        where = safe_url(store.engine)
    finally:
        store.dispose()
    summaries = [display.summary(token) for token in tokens]
    if arguments.json:
        print(json.dumps(summaries, indent=2))
        return 0
    if not summaries:
        print(f"No tokens are stored at {where}.")
        return 0
    headings = ["ID", "USER NAME", "CLIENT ID", "API DOMAIN", "EXPIRES", "REFRESH"]
    table = [
        [
            item["id"],
            item["user_name"],
            item["client_id"],
            item["api_domain"],
            display.expiry_text(item["expiry_time"]),
            "yes" if item["has_refresh_token"] else "no",
        ]
        for item in summaries
    ]
    _print_table(headings, table)
    return 0


def _print_table(headings: list[str], rows: list[list[Any]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max(len(heading), *(len(row[index]) for row in cells))
        for index, heading in enumerate(headings)
    ]
    for row in [headings, *cells]:
        padded = (value.ljust(width) for value, width in zip(row, widths, strict=True))
        print("  ".join(padded).rstrip())


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _show(arguments: argparse.Namespace) -> int:
    store = _existing_store(arguments)
    try:
        token = store.find_token_by_id(arguments.id)
    finally:
        store.dispose()
    item = display.details(token)
    if arguments.json:
        print(json.dumps(item, indent=2))
        return 0
    labels = [
        ("ID", item["id"]),
        ("User name", item["user_name"]),
        ("Client id", item["client_id"]),
        ("Client secret", item["client_secret"]),
        ("API domain", item["api_domain"]),
        ("Redirect URL", item["redirect_url"]),
        ("Expires", display.expiry_text(item["expiry_time"])),
        ("Refresh token", item["refresh_token"]),
        ("Access token", item["access_token"]),
        ("Grant token", item["grant_token"]),
    ]
    width = max(len(label) for label, _ in labels)
    for label, value in labels:
        print(f"{label + ':':<{width + 1}} {_cell(value)}")
    return 0


def _delete(arguments: argparse.Namespace) -> int:
    store = _existing_store(arguments)
    try:
        token = store.find_token_by_id(arguments.id)
        store.delete_token(arguments.id)
    finally:
        store.dispose()
    user = display.summary(token)["user_name"]
    owner = "no user name" if user is None else f"user {user!r}"
    print(f"Deleted the token with the id {arguments.id!r} ({owner}).")
    return 0


def _purge(arguments: argparse.Namespace) -> int:
    store = _existing_store(arguments)
    try:
        where = safe_url(store.engine)
        count = len(store.get_tokens())
        if count == 0:
            print(f"No tokens are stored at {where}; nothing was deleted.")
            return 0
        if not arguments.yes and not _confirm(
            f"Delete all {count} tokens at {where}? Every user will have to "
            f"authorise the application again. [y/N] "
        ):
            raise store_error(
                "Nothing was deleted: the purge was not confirmed (pass --yes to "
                "purge without the question)."
            )
        store.delete_tokens()
    finally:
        store.dispose()
    print(f"Deleted all {count} tokens at {where}.")
    return 0


def _confirm(question: str) -> bool:
    # The question goes to stderr so that stdout keeps only the result.
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    if not answer.endswith("\n"):
        print(file=sys.stderr)  # no input: end the question's line
    return answer.strip().lower() in ("y", "yes")


def _importing_store(arguments: argparse.Namespace) -> SQLAlchemyTokenStore:
    # Imported tokens are encrypted like any other save when keys are set.
    return SQLAlchemyTokenStore(
        resolve_url(arguments.url), encryption_keys=keys_from_environment()
    )


def _import_file_store(arguments: argparse.Namespace) -> int:
    store = _importing_store(arguments)
    try:
        report = importers.import_file_store(store, arguments.path, _progress)
    finally:
        store.dispose()
    for line in report.describe():
        print(line)
    return 0


def _import_db_store(arguments: argparse.Namespace) -> int:
    store = _importing_store(arguments)
    try:
        report = importers.import_db_store(
            store, arguments.source_url, arguments.table, _progress
        )
    finally:
        store.dispose()
    for line in report.describe():
        print(line)
    return 0


def _progress(rows: Iterable[T], total: int) -> Iterable[T]:
    """Show a progress bar on stderr, only when a person is watching it."""
    if not sys.stderr.isatty():
        return rows
    from tqdm import tqdm

    try:
        columns, lines = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        columns = lines = 0
    # A terminal that reports no size (some emulators, `script`) would make
    # tqdm draw an empty bar.
    return tqdm(
        rows,
        total=total,
        desc="Importing",
        unit="row",
        file=sys.stderr,
        ncols=columns or 80,
        nrows=lines or 24,
    )


def _rotate_keys(arguments: argparse.Namespace) -> int:
    # The keys come from the environment only: on a command line they would
    # be left in the shell's history and shown to every user by ps.
    keys = keys_from_environment()
    if not keys:
        raise store_error(
            f"No encryption keys: set {KEYS_VARIABLE} to the Fernet keys, "
            f"comma-separated, the new key first."
        )
    store = SQLAlchemyTokenStore(arguments.url, encryption_keys=keys)
    try:
        store.rotate_keys(batch_size=arguments.batch_size)
    finally:
        store.dispose()
    return 0


def _generate_key(arguments: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the command line."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Manage the Zoho CRM SDK token table in a SQL database.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    upgrade = commands.add_parser(
        "upgrade",
        help="create or upgrade the token table, adopting a DBStore table",
    )
    _add_common_options(upgrade)
    upgrade.add_argument(
        "--revision", default="head", help="the revision to reach (default: head)"
    )
    upgrade.set_defaults(handler=_upgrade)

    current = commands.add_parser("current", help="show the schema revision")
    _add_common_options(current)
    current.set_defaults(handler=_current)

    listing = commands.add_parser("list", help="list the stored tokens, masked")
    _add_common_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show one stored token, masked")
    _add_common_options(show)
    show.add_argument("id", help="the token's id, as `list` shows it")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)

    delete = commands.add_parser("delete", help="delete one stored token")
    _add_common_options(delete)
    delete.add_argument("id", help="the token's id, as `list` shows it")
    delete.set_defaults(handler=_delete)

    purge = commands.add_parser("purge", help="delete every stored token")
    _add_common_options(purge)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=_purge)

    file_store = commands.add_parser(
        "import-file-store", help="import the SDK's FileStore CSV file"
    )
    _add_common_options(file_store)
    file_store.add_argument("path", help="the FileStore CSV file")
    file_store.set_defaults(handler=_import_file_store)

    db_store = commands.add_parser(
        "import-db-store", help="import the SDK's DBStore table from a database"
    )
    _add_common_options(db_store)
    db_store.add_argument(
        "source_url", metavar="URL", help="the URL of the database holding it"
    )
    db_store.add_argument(
        "--table",
        default=importers.DEFAULT_TABLE,
        help=f"the DBStore table's name (default: {importers.DEFAULT_TABLE})",
    )
    db_store.set_defaults(handler=_import_db_store)

    demo = commands.add_parser(
        "demo",
        help="run the token life cycle against a loopback Zoho (no account needed)",
    )
    demo.add_argument(
        "--url",
        help="the database to use (default: a new SQLite file, removed afterwards)",
    )
    demo.add_argument(
        "-v", "--verbose", action="store_true", help="also log what is done"
    )
    demo.set_defaults(handler=_demo)

    rotate = commands.add_parser(
        "rotate-keys",
        help=f"re-encrypt every token with the first key in {KEYS_VARIABLE}",
        description=(
            f"Re-encrypt every stored token with the first Fernet key in "
            f"{KEYS_VARIABLE} (comma-separated; every key decrypts) and "
            f"recompute its digests. Safe to interrupt and run again."
        ),
    )
    _add_common_options(rotate)
    rotate.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        help=f"rows per transaction (default: {DEFAULT_BATCH_SIZE})",
    )
    rotate.set_defaults(handler=_rotate_keys)

    generate = commands.add_parser(
        "generate-key", help="print a new Fernet key for encrypting tokens"
    )
    generate.set_defaults(handler=_generate_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    arguments = build_parser().parse_args(argv)
    # The results are printed; the log is for when a person asks for it.
    verbose = getattr(arguments, "verbose", False)
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s")
    try:
        return arguments.handler(arguments)
    except SDKException as err:
        _error(err.error_message or str(err.code))
    except SQLAlchemyError as err:
        # Only the class: a database error's text can quote a token.
        original = getattr(err, "orig", None) or err
        _error(f"A database call failed ({type(original).__name__}).")
    except BrokenPipeError:
        # The reader went away (`list | head`): nothing more to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except KeyboardInterrupt:
        _error("Interrupted.")
        return 130
    except Exception as err:  # an unexpected failure still gets one line
        _error(f"{type(err).__name__}: {err}")
    return 1


def _error(message: str) -> None:
    line = " ".join(str(message).split())  # always exactly one line
    print(f"{PROGRAM}: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
