"""The ``zoho-sa-store`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from . import migrate
from .engine import URL_VARIABLE, build_engine, resolve_url, safe_url
from .errors import database_error


def _add_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help=f"the database URL (default: the {URL_VARIABLE} environment variable)",
    )


def _upgrade(arguments: argparse.Namespace) -> int:
    migrate.upgrade(arguments.url, arguments.revision)
    return 0


def _current(arguments: argparse.Namespace) -> int:
    engine = build_engine(resolve_url(arguments.url))
    try:
        with engine.connect() as connection:
            revision = migrate.current_revision(connection)
    except SQLAlchemyError as err:
        raise database_error("read the schema revision", safe_url(engine), err) from err
    finally:
        engine.dispose()
    head = migrate.head_revision()
    if revision is None:
        print("none (the token table has not been created)")
    else:
        print(f"{revision}{' (head)' if revision == head else ''}")
    return 0


def _demo(arguments: argparse.Namespace) -> int:
    from .demo import DemoFailure, run_demo

    try:
        run_demo(arguments.url)
    except DemoFailure as failure:
        print(f"zoho-sa-store: the demo failed: {failure}.", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoho-sa-store",
        description="Manage the Zoho CRM SDK token table in a SQL database.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    upgrade = commands.add_parser(
        "upgrade", help="create or upgrade the token table (run before deploying)"
    )
    _add_url_option(upgrade)
    upgrade.add_argument(
        "--revision", default="head", help="the revision to reach (default: head)"
    )
    upgrade.set_defaults(handler=_upgrade)

    current = commands.add_parser("current", help="show the schema revision")
    _add_url_option(current)
    current.set_defaults(handler=_current)

    demo = commands.add_parser(
        "demo",
        help="run the token life cycle against a loopback Zoho (no account needed)",
    )
    demo.add_argument(
        "--url",
        help="the database to use (default: a new SQLite file, removed afterwards)",
    )
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return arguments.handler(arguments)
    except SDKException as err:
        print(f"zoho-sa-store: {err.error_message}", file=sys.stderr)
        return 1
    except Exception as err:  # an unexpected failure still gets one line
        print(f"zoho-sa-store: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
