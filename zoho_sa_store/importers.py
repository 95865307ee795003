"""Import tokens from the SDK's ``FileStore`` CSV file or a ``DBStore`` table.

Both importers read every source row first, so a malformed source writes
nothing, then save each row through ``SQLAlchemyTokenStore.save_token``:

- A row with a user name is saved under that user name, as the SDK finds it.
  A new row keeps the source's id when the store does not use it yet, so an
  application that kept token ids still finds them.
- A row without a user name is saved under its id.
- A row with no refresh, access or grant token, or with neither a user name
  nor an id, is skipped.
- Of several rows for one user name, only the one expiring last is imported
  (the same rule as ``adopt``).
- A row whose stored counterpart expires later is skipped: importing an old
  file again must not undo the refreshes made since the switch.

So running an import twice updates the rows of the first run and creates no
duplicates. Empty values are read as missing, as the SDK's ``FileStore`` does.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException

from .adopt import DBSTORE_COLUMNS, parse_expiry, resolve_duplicates
from .display import natural_id_order
from .engine import DatabaseURL, build_engine, require_existing_file, safe_url
from .errors import database_error, store_error
from .mapping import token_from_row, user_name_of
from .store import SQLAlchemyTokenStore

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Wraps the rows being saved, e.g. in a progress bar: ``progress(rows, total)``.
Progress = Callable[[Iterable[T], int], Iterable[T]]

DEFAULT_TABLE = "oauthtoken"

# The headers the SDK's FileStore has written: ``redirect_uri`` today,
# ``redirect_url`` in older releases, and no ``api_domain`` before that
# column was added (the SDK pads such files when it opens them).
_FILE_STORE_COLUMNS = DBSTORE_COLUMNS[:8]
_REDIRECT_HEADERS = ("redirect_uri", "redirect_url")


@dataclass(frozen=True)
class SourceRow:
    """A token read from a source, and where it was read (for reports)."""

    where: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Skipped:
    """A source row that was not imported, and why."""

    where: str
    reason: str


@dataclass
class ImportReport:
    """What an import did; ``notes`` are rows imported with a value dropped."""

    source: str
    rows: int = 0
    imported: int = 0
    updated: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Return the report for people: the skipped rows, then the counts."""
        lines = [f"Skipped {row.where}: {row.reason}." for row in self.skipped]
        lines += self.notes
        lines.append(
            f"{self.source}: {self.rows} rows read, {self.imported} imported, "
            f"{self.updated} updated, {len(self.skipped)} skipped."
        )
        return lines


def import_file_store(
    store: SQLAlchemyTokenStore, path: str | Path, progress: Progress | None = None
) -> ImportReport:
    """Import the tokens of a ``FileStore`` CSV file into ``store``."""
    # The store is read first: an unusable target fails before the source
    # is read at all.
    stored = store.get_tokens()
    rows = read_file_store(path)
    return _import(store, stored, rows, str(path), progress)


def import_db_store(
    store: SQLAlchemyTokenStore,
    url: DatabaseURL,
    table: str = DEFAULT_TABLE,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the tokens of a ``DBStore`` table at ``url`` into ``store``."""
    stored = store.get_tokens()
    source, rows = read_db_store(url, table)
    return _import(store, stored, rows, source, progress)


def read_file_store(path: str | Path) -> list[SourceRow]:
    """Read every token of a ``FileStore`` CSV file; a malformed one raises.

    Errors name the file and, for a bad line, its number. They never quote the
    line, which holds tokens.
    """
    path = Path(path)
    try:
        # utf-8-sig: a file saved by a spreadsheet may start with a BOM.
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError as err:
        raise store_error(f"The file {path} does not exist.") from err
    except IsADirectoryError as err:
        raise store_error(f"{path} is a folder, not a FileStore file.") from err
    except OSError as err:
        raise store_error(f"Could not open {path}: {err.strerror}.") from err
    with handle:
        reader = csv.reader(handle)
        try:
            return _read_file_store_rows(path, reader)
        except csv.Error as err:
            raise store_error(
                f"{path}, line {reader.line_num}: not valid CSV ({err})."
            ) from err
        except UnicodeDecodeError as err:
            raise store_error(
                f"{path}, after line {reader.line_num}: not UTF-8 text."
            ) from err


def _read_file_store_rows(path: Path, reader) -> list[SourceRow]:
    header = next(reader, None)
    if header is None:
        raise store_error(
            f"{path} is empty: a FileStore file starts with its header line."
        )
    columns = _file_store_columns(path, [name.strip() for name in header])
    rows = []
    line = reader.line_num + 1
    for record in reader:
        where, line = f"line {line}", reader.line_num + 1
        if not record:
            continue  # the SDK skips blank lines too
        if len(record) != len(columns):
            raise store_error(
                f"{path}, {where}: expected {len(columns)} fields as in the "
                f"header, found {len(record)}."
            )
        rows.append(SourceRow(where, dict(zip(columns, record, strict=True))))
    return rows


def _file_store_columns(path: Path, header: list[str]) -> list[str]:
    # The redirect column is stored as redirect_url, whatever the header says.
    for redirect in _REDIRECT_HEADERS:
        base = [*_FILE_STORE_COLUMNS, redirect]
        if header in (base, [*base, "api_domain"]):
            return [*_FILE_STORE_COLUMNS, "redirect_url", *header[len(base) :]]
    expected = ",".join([*_FILE_STORE_COLUMNS, "redirect_uri", "api_domain"])
    raise store_error(
        f"{path}, line 1: not the SDK's FileStore header (expected {expected}; "
        f"redirect_url for redirect_uri and no api_domain are also accepted)."
    )


def read_db_store(
    url: DatabaseURL, table: str = DEFAULT_TABLE
) -> tuple[str, list[SourceRow]]:
    """Read every token of a ``DBStore`` table; return its name and rows."""
    require_existing_file(url)
    engine = build_engine(url)
    where = safe_url(engine)
    source = f"{table} at {where}"
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(table):
                raise store_error(
                    f"There is no table {table!r} at {where}: name the SDK's "
                    f"DBStore table with --table."
                )
            reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
            missing = [name for name in DBSTORE_COLUMNS if name not in reflected.c]
            if missing:
                raise store_error(
                    f"The table {table!r} at {where} is not a DBStore table: it "
                    f"has no {', '.join(missing)} column."
                )
            query = sa.select(*(reflected.c[name] for name in DBSTORE_COLUMNS))
            rows = connection.execute(query).mappings().all()
    except SQLAlchemyError as err:
        raise database_error(f"read the table {table!r}", where, err) from err
    finally:
        if engine is not url:
            engine.dispose()
    return source, [
        SourceRow(f"id {_text(row['id'])!r}", dict(row))
        for row in sorted(rows, key=lambda row: natural_id_order(_text(row["id"])))
    ]


def import_rows(
    store: SQLAlchemyTokenStore,
    rows: Sequence[SourceRow],
    source: str,
    progress: Progress | None = None,
) -> ImportReport:
    """Save source rows into ``store`` by the rules in this module's docstring."""
    return _import(store, store.get_tokens(), rows, source, progress)


def _import(
    store: SQLAlchemyTokenStore,
    stored: list[OAuthToken],
    rows: Sequence[SourceRow],
    source: str,
    progress: Progress | None,
) -> ImportReport:
    report = ImportReport(source=source, rows=len(rows))
    candidates: list[tuple[SourceRow, dict[str, Any]]] = []
    for row in rows:
        values = _normalise(row, report)
        reason = _unusable(values)
        if reason is None:
            candidates.append((row, values))
        else:
            report.skipped.append(Skipped(row.where, reason))

    where_of = {id(values): row.where for row, values in candidates}
    kept, duplicates = resolve_duplicates(
        [values for _, values in candidates], ("user_name",)
    )
    for values, _, winner in duplicates:
        report.skipped.append(
            Skipped(
                where_of[id(values)],
                f"the same user name as {where_of[id(winner)]}, which expires later",
            )
        )

    by_user = {user_name_of(token): token for token in stored}
    by_id = {token.get_id(): token for token in stored}
    saving = [(where_of[id(values)], values) for values in kept]
    if progress is not None:
        saving = progress(saving, len(saving))
    for where, values in saving:
        outcome = _save(store, values, by_user, by_id)
        if outcome == "imported":
            report.imported += 1
        elif outcome == "updated":
            report.updated += 1
        else:
            report.skipped.append(Skipped(where, outcome))
    # Reported in the source's order, whichever rule skipped a row.
    order = {row.where: index for index, row in enumerate(rows)}
    report.skipped.sort(key=lambda skipped: order.get(skipped.where, 0))
    for line in report.describe()[:-1]:
        log.info("%s", line)
    log.info(
        "Imported %d, updated %d and skipped %d rows from %s",
        report.imported,
        report.updated,
        len(report.skipped),
        source,
    )
    return report


def _normalise(row: SourceRow, report: ImportReport) -> dict[str, Any]:
    values = {name: _text(row.values.get(name)) for name in DBSTORE_COLUMNS}
    for name in DBSTORE_COLUMNS:
        if values[name] == "":
            values[name] = None
    raw_expiry = values["expiry_time"]
    values["expiry_time"] = parse_expiry(raw_expiry)
    if raw_expiry is not None and values["expiry_time"] is None:
        report.notes.append(
            f"{row.where}: the expiry time is not a number of milliseconds, so "
            f"it was left out (the SDK refreshes that access token)."
        )
    return values


def _unusable(values: dict[str, Any]) -> str | None:
    if not (values["refresh_token"] or values["access_token"] or values["grant_token"]):
        return "it holds no refresh, access or grant token"
    if values["user_name"] is None and values["id"] is None:
        return "it has neither a user name nor an id"
    return None


def _save(
    store: SQLAlchemyTokenStore,
    values: dict[str, Any],
    by_user: dict[str | None, OAuthToken],
    by_id: dict[str | None, OAuthToken],
) -> str:
    """Save one row; return "imported", "updated" or why it was skipped."""
    name, row_id = values["user_name"], values["id"]
    if name is not None:
        target = by_user.get(name)
        # Saved by user name; a new row keeps the source id if it is free.
        new_id = row_id if target is None and row_id not in by_id else None
    else:
        target = by_id.get(row_id)
        if target is not None and user_name_of(target) is not None:
            return (
                f"its id {row_id!r} is the id of the token of "
                f"{user_name_of(target)!r} in the store"
            )
        new_id = row_id
    if target is not None and _expires_later(target, values["expiry_time"]):
        return "the store holds a token for it that expires later"
    token = token_from_row({**values, "id": new_id})
    try:
        store.save_token(token)
    except SDKException as err:
        if isinstance(getattr(err, "cause", None), IntegrityError):
            return "one of its tokens is already stored on another row"
        raise
    by_id[token.get_id()] = token
    if name is not None:
        by_user[name] = token
    return "imported" if target is None else "updated"


def _expires_later(stored: OAuthToken, expiry: int | None) -> bool:
    stored_expiry = parse_expiry(stored.get_expires_in())
    if stored_expiry is None:
        return False
    return expiry is None or stored_expiry > expiry


def _text(value: Any) -> Any:
    # A DBStore table of this package's own on MySQL holds VARBINARY keys.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value
