"""Units of work the store runs on a pooled connection.

Each is a function of a ``Connection``, so that the store can run it again on
a fresh connection when the first one turns out to have been closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Executable

Work = Callable[[Connection], Any]


def first_row(
    query: Executable, values: Mapping[str, Any] | None = None
) -> Callable[[Connection], Mapping[str, Any] | None]:
    """Return work that runs ``query`` and gives its first row, or None."""
    return lambda connection: connection.execute(query, values).mappings().first()


def all_rows(query: Executable) -> Callable[[Connection], Sequence[Mapping[str, Any]]]:
    """Return work that runs ``query`` and gives every row."""
    return lambda connection: connection.execute(query).mappings().all()


def write(statement: Executable) -> Callable[[Connection], int]:
    """Return work that runs ``statement`` and gives the row count.

    The store commits, where its engine needs it, once the work is done.
    """
    return lambda connection: connection.execute(statement).rowcount
