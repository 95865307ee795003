"""The single-statement upsert that saves a token, for each database.

A save writes the row identified by one key column (see ``mapping.save_key``):
it inserts a new row, or, when a row with that key exists, updates it in the
same statement. Columns the token leaves as None keep their stored values.
A save also ends any refresh lease on the row: the token it writes is the
outcome of the refresh the lease was taken for.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Insert, and_, bindparam, func, null, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from .encryption import DIGEST_COLUMNS, KEY_ID_COLUMN
from .mapping import VALUE_COLUMNS
from .model import oauthtoken

# Every column a save writes besides the id.
WRITTEN_COLUMNS = (*VALUE_COLUMNS, *DIGEST_COLUMNS.values(), KEY_ID_COLUMN)

_INSERT_CONSTRUCTS = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
    "mysql": mysql.insert,
    "mariadb": mysql.insert,
}


def supports(dialect_name: str) -> bool:
    """Tell whether there is an upsert for a dialect."""
    return dialect_name in _INSERT_CONSTRUCTS


# Values travel as bound parameters, so that one statement per shape can be
# built once and reused; SQLAlchemy wants their names to differ from the
# columns' in an INSERT.
PARAMETER_PREFIX = "value_"
STORED_KEYS_PARAMETER = "stored_keys"


def build_upsert(
    dialect_name: str,
    key_column: str,
    returning: bool,
    *,
    writable: ColumnElement[bool],
    looks_up_stored_key: bool = False,
) -> Insert:
    """Return the upsert that saves a row into the row matching ``key_column``.

    The statement takes its values as parameters (see ``parameters``): the
    row's ``id`` (used when the statement inserts) and every written column.
    With ``returning``, it returns the id of the row it wrote. ``writable``
    is the condition the stored row must meet to be updated (its key must be
    one of the store's); when it does not hold, the statement changes
    nothing.

    With ``looks_up_stored_key``, the row may be stored under another value
    of ``key_column`` (a digest under an older key, or a plain digest), given
    as the ``stored_keys`` parameter. The statement then looks the stored
    value up itself, updates that row, and writes the new value in its place.
    """
    values: dict[str, Any] = {
        name: bindparam(PARAMETER_PREFIX + name, type_=oauthtoken.c[name].type)
        for name in ("id", *WRITTEN_COLUMNS)
    }
    new_key = None
    if looks_up_stored_key:
        new_key = values[key_column]
        values[key_column] = _stored_key(key_column, new_key)
    insert = _INSERT_CONSTRUCTS[dialect_name](oauthtoken).values(values)
    if dialect_name in ("mysql", "mariadb"):
        statement = _on_duplicate_key(insert, key_column, writable, new_key)
    else:
        statement = _on_conflict(insert, key_column, writable, new_key)
    if returning:
        statement = statement.returning(oauthtoken.c.id)
    return statement


def parameters(
    row: dict[str, Any], stored_keys: list[str] | None = None
) -> dict[str, Any]:
    """Return the parameters an upsert from ``build_upsert`` takes for ``row``."""
    values = {
        PARAMETER_PREFIX + name: row.get(name) for name in ("id", *WRITTEN_COLUMNS)
    }
    if stored_keys is not None:
        values[STORED_KEYS_PARAMETER] = stored_keys
    return values


def _stored_key(key_column: str, new_key):
    # The derived table is for MySQL, which refuses a subquery on the table
    # an INSERT writes unless the subquery is materialized first; its LIMIT
    # keeps the optimizer from merging it away. The others accept it as is.
    column = oauthtoken.c[key_column]
    candidates = bindparam(STORED_KEYS_PARAMETER, expanding=True, type_=column.type)
    found = (
        select(column.label("found"))
        .where(column.in_(candidates))
        .limit(1)
        .subquery("stored")
    )
    return func.coalesce(select(found.c.found).scalar_subquery(), new_key)


def _on_conflict(insert, key_column: str, writable, new_key):
    table = oauthtoken.c
    assignments = {
        name: func.coalesce(insert.excluded[name], table[name])
        for name in WRITTEN_COLUMNS
    }
    assignments["refresh_lease_until"] = null()
    if new_key is not None:
        assignments[key_column] = new_key
    # A clash on any other unique column is not caught here, so it fails the
    # whole statement instead of touching a second row. A row the store's
    # keys cannot open is left alone: the statement then writes no row.
    return insert.on_conflict_do_update(
        index_elements=[key_column], set_=assignments, where=writable
    )


def _on_duplicate_key(insert, key_column: str, writable, new_key):
    # MySQL runs ON DUPLICATE KEY UPDATE for a clash on *any* unique key, and
    # the row it then updates may not be the one the key names: saving a user
    # whose refresh token is stored on another row would overwrite that row.
    # Every assignment is therefore guarded by "this is the intended row".
    # For any other row, and for a row the store's keys cannot open, the id
    # is set to NULL, which the server refuses ("Column 'id' cannot be null",
    # even outside strict mode, because the statement inserts a single row),
    # so the statement fails and writes nothing. MySQL applies assignments
    # left to right, so the guard on the id comes first, before any column
    # the condition reads could change, and a key column that changes (the
    # digest moving to the first key) comes last.
    table = oauthtoken.c
    intended = table[key_column].op("<=>", is_comparison=True)(
        insert.inserted[key_column]
    )
    assignments = [("id", func.if_(and_(intended, writable), table.id, null()))]
    for name in WRITTEN_COLUMNS:
        if new_key is not None and name == key_column:
            continue
        new_value = func.coalesce(insert.inserted[name], table[name])
        assignments.append((name, func.if_(intended, new_value, table[name])))
    lease = table.refresh_lease_until
    assignments.append((lease.name, func.if_(intended, null(), lease)))
    if new_key is not None:
        assignments.append((key_column, func.if_(intended, new_key, table[key_column])))
    return insert.on_duplicate_key_update(assignments)
