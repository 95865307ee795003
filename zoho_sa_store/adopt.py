"""Adopt a token table that the SDK's ``DBStore`` created, keeping its rows.

The SDK documents a MySQL table for ``DBStore``::

    CREATE TABLE oauthtoken (id varchar(10) NOT NULL, user_name varchar(255),
      client_id varchar(255), client_secret varchar(255),
      refresh_token varchar(255), access_token varchar(255),
      grant_token varchar(255), expiry_time varchar(20),
      redirect_url varchar(255), api_domain varchar(255), primary key (id));

It has this package's table name and column names but none of its unique
indexes, and the SDK happily writes a user's token twice. Adoption turns such
a table, in place, into the table revision 0001 creates:

1. Empty strings become NULL in every column but ``id``: the SDK's
   ``FileStore`` and this store both read an empty value as a missing one, and
   the unique indexes would otherwise treat two empty user names as a clash.
2. ``expiry_time`` must hold a whole number of epoch milliseconds; any other
   value becomes NULL, which makes the SDK refresh the access token.
3. Rows sharing a user name are reduced to the one with the latest expiry,
   then likewise for a shared refresh, access or grant token (NULLs are never
   duplicates of each other). An equal expiry keeps the later id. Every
   dropped row is logged at INFO with its id and user name, never its tokens.
4. The columns get revision 0001's types and the four unique indexes are
   created. The caller then stamps the revision (see ``migrate.upgrade``).

Everything runs on the caller's connection, so on PostgreSQL and SQLite the
whole adoption is one transaction. MySQL and MariaDB commit each ALTER TABLE
on their own; adoption is written so that running it again after an
interruption finishes the job.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import BigInteger, Connection, String

from .column_types import key_text
from .errors import store_error
from .mapping import VALUE_COLUMNS

log = logging.getLogger(__name__)

TABLE_NAME = "oauthtoken"

# The revision whose schema adoption produces; the caller stamps it.
ADOPTED_REVISION = "0001"

# The columns of the SDK's DBStore table, in its order, which is also ours.
DBSTORE_COLUMNS = ("id", *VALUE_COLUMNS)

# Columns with a unique index, in the order duplicates are resolved: the user
# name first, because that is what the SDK looks a user's token up by.
UNIQUE_COLUMNS = ("user_name", "refresh_token", "access_token", "grant_token")

# The largest value a BIGINT column holds.
_BIGINT_MAX = 2**63 - 1
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _revision_0001_columns() -> list[tuple[str, Any, bool]]:
    # Frozen like the migration itself: a later revision that changes the
    # model must not change what adoption produces, since the revisions after
    # 0001 run on top of it.
    return [
        ("id", key_text(), False),
        ("user_name", key_text(), True),
        ("client_id", String(255), True),
        ("client_secret", String(255), True),
        ("refresh_token", key_text(), True),
        ("access_token", key_text(), True),
        ("grant_token", key_text(), True),
        ("expiry_time", BigInteger(), True),
        ("redirect_url", String(255), True),
        ("api_domain", String(255), True),
    ]


@dataclass(frozen=True)
class DroppedRow:
    """A row removed as a duplicate: what identifies it, and why it went."""

    id: str
    user_name: str | None
    column: str
    kept_id: str

    def describe(self) -> str:
        """Say which row was dropped and why, without any token in it."""
        name = "no user name" if self.user_name is None else repr(self.user_name)
        shared = "user name" if self.column == "user_name" else self.column
        shared = shared.replace("_", " ")
        return (
            f"Dropped row id {self.id!r} ({name}): it has the same {shared} as "
            f"row id {self.kept_id!r}, which expires later."
        )


@dataclass
class Adoption:
    """What adopting a DBStore table did."""

    table: str
    rows_found: int
    dropped: list[DroppedRow] = field(default_factory=list)
    emptied_values: int = 0
    unreadable_expiries: list[str] = field(default_factory=list)

    @property
    def rows_kept(self) -> int:
        """Return how many rows the adopted table holds."""
        return self.rows_found - len(self.dropped)

    def describe(self) -> list[str]:
        """Return the report for people, one sentence a line."""
        lines = [
            f"Adopted the SDK's DBStore table {self.table!r}: "
            f"{self.rows_found} rows found, {self.rows_kept} kept, "
            f"{len(self.dropped)} dropped as duplicates."
        ]
        lines += [row.describe() for row in self.dropped]
        if self.emptied_values:
            lines.append(f"Turned {self.emptied_values} empty values into NULL.")
        for row_id in self.unreadable_expiries:
            lines.append(
                f"Row id {row_id!r} had an expiry time that is not a number of "
                f"milliseconds; it is now empty, so the SDK refreshes that token."
            )
        return lines


def has_token_table(connection: Connection) -> bool:
    """Tell whether the database holds a table named ``oauthtoken``."""
    return sa.inspect(connection).has_table(TABLE_NAME)


def check_dbstore_layout(connection: Connection) -> None:
    """Raise unless ``oauthtoken`` has exactly the DBStore column set."""
    found = {
        column["name"] for column in sa.inspect(connection).get_columns(TABLE_NAME)
    }
    expected = set(DBSTORE_COLUMNS)
    if found == expected:
        return
    details = []
    if expected - found:
        details.append("missing " + ", ".join(sorted(expected - found)))
    if found - expected:
        details.append("unexpected " + ", ".join(sorted(found - expected)))
    raise store_error(
        f"A table named {TABLE_NAME!r} exists but was not created by this "
        f"package nor in the SDK's DBStore layout ({'; '.join(details)}), so it "
        f"was left alone: rename it or use another database."
    )


def adopt(connection: Connection) -> Adoption:
    """Turn the DBStore table into revision 0001's table, keeping its rows.

    The caller has checked that the table exists and that no revision is
    recorded; this checks the column set, cleans and deduplicates the rows,
    widens the columns and adds the unique indexes. It does not stamp.
    """
    check_dbstore_layout(connection)
    table = sa.Table(TABLE_NAME, sa.MetaData(), autoload_with=connection)
    rows = [dict(row) for row in connection.execute(sa.select(table)).mappings()]
    adoption = Adoption(table=TABLE_NAME, rows_found=len(rows))

    cleaned = [_clean(row, adoption) for row in rows]
    kept, duplicates = resolve_duplicates(cleaned, UNIQUE_COLUMNS)
    adoption.dropped = [
        DroppedRow(
            id=row["id"],
            user_name=row["user_name"],
            column=column,
            kept_id=winner["id"],
        )
        for row, column, winner in duplicates
    ]
    _write_back(connection, table, rows, kept, adoption)
    _alter_to_revision_0001(connection)

    for row in adoption.dropped:
        log.info("%s", row.describe())
    log.info(
        "Adopted the DBStore table %s: %d rows found, %d kept",
        TABLE_NAME,
        adoption.rows_found,
        adoption.rows_kept,
    )
    return adoption


def parse_expiry(value: Any) -> int | None:
    """Return an expiry as whole epoch milliseconds, or None when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= _BIGINT_MAX else None
    text = _text(value).strip()
    if not _WHOLE_NUMBER.fullmatch(text):
        return None
    number = int(text)
    return number if abs(number) <= _BIGINT_MAX else None


def resolve_duplicates(
    rows: Sequence[Mapping[str, Any]], columns: Iterable[str]
) -> tuple[list[Mapping[str, Any]], list[tuple[Mapping[str, Any], str, Any]]]:
    """Keep one row per value of each unique column: the one expiring last.

    Rows are mappings with ``id``, ``expiry_time`` (a number or None) and the
    named columns. Columns are resolved in the order given, each among the
    rows the earlier ones kept. A NULL is no duplicate of another NULL. An
    equal expiry keeps the later id (ids compared as numbers when they are).
    Returns the kept rows, in their original order, and for each dropped row
    the triple (row, column it shared, row kept instead).
    """
    kept = list(rows)
    dropped: list[tuple[Mapping[str, Any], str, Any]] = []
    for column in columns:
        winners: dict[Any, Mapping[str, Any]] = {}
        for row in kept:
            value = row[column]
            if value is None:
                continue
            current = winners.get(value)
            if current is None or _recency(row) > _recency(current):
                winners[value] = row
        survivors = []
        for row in kept:
            value = row[column]
            winner = winners.get(value) if value is not None else None
            if winner is None or winner is row:
                survivors.append(row)
            else:
                dropped.append((row, column, winner))
        kept = survivors
    return kept, dropped


def _recency(row: Mapping[str, Any]) -> tuple:
    expiry = row["expiry_time"]
    row_id = row["id"]
    if isinstance(row_id, str) and row_id.isdecimal():
        id_rank: tuple = (1, int(row_id), "")
    else:
        id_rank = (0, 0, "" if row_id is None else str(row_id))
    return (expiry is not None, expiry if expiry is not None else 0, id_rank)


def _text(value: Any) -> Any:
    # VARBINARY columns (a half-finished adoption on MySQL) read as bytes.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")
    return value


def _clean(row: Mapping[str, Any], adoption: Adoption) -> dict[str, Any]:
    cleaned = {name: _text(row[name]) for name in DBSTORE_COLUMNS}
    for name in DBSTORE_COLUMNS:
        if name != "id" and cleaned[name] == "":
            cleaned[name] = None
            adoption.emptied_values += 1
    raw_expiry = cleaned["expiry_time"]
    cleaned["expiry_time"] = parse_expiry(raw_expiry)
    if raw_expiry is not None and cleaned["expiry_time"] is None:
        adoption.unreadable_expiries.append(cleaned["id"])
    return cleaned


def _write_back(
    connection: Connection,
    table: sa.Table,
    original: list[dict[str, Any]],
    kept: list[Mapping[str, Any]],
    adoption: Adoption,
) -> None:
    if adoption.dropped:
        dropped_ids = [row.id for row in adoption.dropped]
        connection.execute(sa.delete(table).where(table.c.id.in_(dropped_ids)))
    before = {_text(row["id"]): row for row in original}
    for row in kept:
        changes = {}
        for name in DBSTORE_COLUMNS[1:]:
            value = row[name]
            stored = before[row["id"]][name]
            if name == "expiry_time":
                # Still a text column here on a first run: write the number
                # in the form every database's cast to BIGINT accepts.
                if value is not None and not isinstance(stored, int):
                    value = str(value)
                if value != stored:
                    changes[name] = value
            elif value != _text(stored):
                changes[name] = value
        if changes:
            connection.execute(
                sa.update(table).where(table.c.id == row["id"]).values(changes)
            )


def _alter_to_revision_0001(connection: Connection) -> None:
    dialect = connection.dialect.name
    op = Operations(MigrationContext.configure(connection))
    existing = {
        column["name"]: column
        for column in sa.inspect(connection).get_columns(TABLE_NAME)
    }
    targets = _revision_0001_columns()
    if dialect == "sqlite":
        # SQLite cannot change a column's type: the batch copies the rows
        # into a new table of the right shape, casting expiry_time.
        with op.batch_alter_table(TABLE_NAME, recreate="always") as batch:
            for name, type_, nullable in targets:
                batch.alter_column(name, type_=type_, nullable=nullable)
    else:
        if dialect in ("mysql", "mariadb"):
            _convert_to_utf8mb4(op, connection)
        for name, type_, nullable in targets:
            options = {}
            if name == "expiry_time":
                options["postgresql_using"] = "expiry_time::bigint"
            op.alter_column(
                TABLE_NAME,
                name,
                type_=type_,
                nullable=nullable,
                existing_type=existing[name]["type"],
                existing_nullable=existing[name]["nullable"],
                **options,
            )
    indexes = {
        index["name"] for index in sa.inspect(connection).get_indexes(TABLE_NAME)
    }
    for column in UNIQUE_COLUMNS:
        name = f"ix_{TABLE_NAME}_{column}"
        if name not in indexes:
            op.create_index(name, TABLE_NAME, [column], unique=True)


def _convert_to_utf8mb4(op: Operations, connection: Connection) -> None:
    # The SDK's DDL names no character set, so the table has the server's
    # default: latin1 before MySQL 8. Key columns become VARBINARY, which
    # keeps the bytes of the current character set, and this package reads
    # them as UTF-8: convert first. The statement carries no values.
    table = connection.dialect.identifier_preparer.quote(TABLE_NAME)
    op.execute(sa.text(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4"))
