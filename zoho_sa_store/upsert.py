"""The single-statement upsert that saves a token, for each database.

A save writes the row identified by one key column (see ``mapping.save_key``):
it inserts a new row, or, when a row with that key exists, updates it in the
same statement. Columns the token leaves as None keep their stored values.
A save also ends any refresh lease on the row: the token it writes is the
outcome of the refresh the lease was taken for.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, func, null
from sqlalchemy.dialects import mysql, postgresql, sqlite

from .mapping import VALUE_COLUMNS
from .model import oauthtoken

_INSERT_CONSTRUCTS = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
    "mysql": mysql.insert,
    "mariadb": mysql.insert,
}


def supports(dialect_name: str) -> bool:
    """Tell whether there is an upsert for a dialect."""
    return dialect_name in _INSERT_CONSTRUCTS


def build_upsert(
    dialect_name: str, key_column: str, row: dict[str, Any], returning: bool
) -> Insert:
    """Return the upsert that saves ``row`` into the row matching ``key_column``.

    ``row`` holds ``id`` (used when the statement inserts) and every value
    column. With ``returning``, the statement returns the id of the row it
    wrote.
    """
    insert = _INSERT_CONSTRUCTS[dialect_name](oauthtoken).values(row)
    if dialect_name in ("mysql", "mariadb"):
        statement = _on_duplicate_key(insert, key_column)
    else:
        statement = _on_conflict(insert, key_column)
    if returning:
        statement = statement.returning(oauthtoken.c.id)
    return statement


def _on_conflict(insert, key_column: str):
    table = oauthtoken.c
    assignments = {
        name: func.coalesce(insert.excluded[name], table[name])
        for name in VALUE_COLUMNS
    }
    assignments["refresh_lease_until"] = null()
    # A clash on any other unique column is not caught here, so it fails the
    # whole statement instead of touching a second row.
    return insert.on_conflict_do_update(index_elements=[key_column], set_=assignments)


def _on_duplicate_key(insert, key_column: str):
    # MySQL runs ON DUPLICATE KEY UPDATE for a clash on *any* unique key, and
    # the row it then updates may not be the one the key names: saving a user
    # whose refresh token is stored on another row would overwrite that row.
    # Every assignment is therefore guarded by "this is the intended row".
    # For any other row the id is set to NULL, which the server refuses
    # ("Column 'id' cannot be null", even outside strict mode, because the
    # statement inserts a single row), so the statement fails and writes
    # nothing. MySQL applies assignments left to right, so the guard on the
    # id comes first, before any column the condition reads could change.
    table = oauthtoken.c
    intended = table[key_column].op("<=>")(insert.inserted[key_column])
    assignments = [("id", func.if_(intended, table.id, null()))]
    for name in VALUE_COLUMNS:
        new_value = func.coalesce(insert.inserted[name], table[name])
        assignments.append((name, func.if_(intended, new_value, table[name])))
    lease = table.refresh_lease_until
    assignments.append((lease.name, func.if_(intended, null(), lease)))
    return insert.on_duplicate_key_update(assignments)
