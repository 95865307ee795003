"""The write transaction that migrations and key rotation run in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in a transaction that holds the right to write.

    The store's own engines run in autocommit mode, so the transaction is
    begun explicitly. On SQLite it is ``BEGIN IMMEDIATE``, which takes the
    database's write lock before anything is read: processes that upgrade a
    new file at the same moment, or a rotation and the application, then take
    turns instead of one overwriting what the other read. SQLite runs DDL
    inside a transaction like any other statement.
    """
    with engine.connect() as connection:
        if engine.dialect.name != "sqlite":
            connection = connection.execution_options(
                isolation_level=connection.default_isolation_level
            )
            with connection.begin():
                yield connection
            return
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")
