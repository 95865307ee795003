"""The ``zoho-sa-store`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from . import migrate
from .encryption import KEYS_VARIABLE, generate_key, keys_from_environment
from .engine import URL_VARIABLE, build_engine, resolve_url, safe_url
from .errors import database_error, store_error
from .rotation import DEFAULT_BATCH_SIZE
from .store import SQLAlchemyTokenStore


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

    rotate = commands.add_parser(
        "rotate-keys",
        help=f"re-encrypt every token with the first key in {KEYS_VARIABLE}",
        description=(
            f"Re-encrypt every stored token with the first Fernet key in "
            f"{KEYS_VARIABLE} (comma-separated; every key decrypts) and "
            f"recompute its digests. Safe to interrupt and run again."
        ),
    )
    _add_url_option(rotate)
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
