"""The database server's clock, in epoch milliseconds, as a SQL expression.

Refresh leases are timed on the database's clock rather than each caller's,
so that processes on hosts whose clocks disagree still agree on when a lease
ends.
"""

from __future__ import annotations

import time

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class database_now_ms(FunctionElement):
    """The database's current time in epoch milliseconds."""

    type = BigInteger()
    inherit_cache = True
    name = "database_now_ms"


@compiles(database_now_ms, "postgresql")
def _postgresql(element, compiler, **kw):
    # clock_timestamp(), not now(): now() is frozen for a whole transaction.
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"


@compiles(database_now_ms, "mysql")
@compiles(database_now_ms, "mariadb")
def _mysql(element, compiler, **kw):
    return "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"


@compiles(database_now_ms, "sqlite")
def _sqlite(element, compiler, **kw):
    return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"


def local_now_ms() -> int:
    """Return this machine's time in epoch milliseconds, as the SDK reads it."""
    return int(time.time() * 1000)
