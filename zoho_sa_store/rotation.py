"""Re-encrypting every stored token with the first key, batch by batch."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from .encryption import KEY_ID_COLUMN, FernetCodec, key_mismatch_error
from .errors import store_error
from .model import oauthtoken
from .transaction import write_transaction

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500

#: Called after each committed batch with the rows done so far and the total.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class RotationReport:
    """What a rotation did: rows examined, and rows it rewrote."""

    rows: int
    rewritten: int


def rotate(
    engine: Engine,
    codec: FernetCodec,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | ProgressCallback | None = None,
) -> RotationReport:
    """Bring every row under the codec's first key; see ``rotate_keys``.

    ``progress`` is True for a bar on stderr, False for none, None for a bar
    only when stderr is a terminal, or a callable told ``(done, total)``
    after each batch is committed.
    """
    if batch_size < 1:
        raise store_error("The batch size of a key rotation must be at least 1.")
    total = _check_keys(engine, codec)
    report = _progress(progress, total)
    rows_seen = rewritten = 0
    last_id = None
    try:
        while True:
            with write_transaction(engine) as connection:
                rows = _lock_batch(connection, last_id, batch_size)
                for row in rows:
                    changes = codec.rotated(row)
                    if changes is None:
                        continue
                    _rewrite(connection, row["id"], changes)
                    rewritten += 1
            if not rows:
                break
            rows_seen += len(rows)
            last_id = rows[-1]["id"]
            # Rows saved while the rotation runs can outgrow the first count.
            total = max(total, rows_seen)
            report(rows_seen, total)
    finally:
        close = getattr(report, "close", None)
        if close is not None:
            close()
    log.info("Re-encrypted %d of %d rows with the first key", rewritten, rows_seen)
    return RotationReport(rows=rows_seen, rewritten=rewritten)


def _rewrite(connection: Connection, row_id: str, changes: dict) -> None:
    statement = update(oauthtoken).where(oauthtoken.c.id == row_id).values(changes)
    try:
        connection.execute(statement)
    except IntegrityError as err:
        # While two keys were in use, the same token could be saved on two
        # rows under different digests; under one key they clash.
        raise store_error(
            f"Could not rotate the row with the id {row_id!r}: another row "
            f"holds the same refresh, access or grant token. Delete one of the "
            f"two rows and run the rotation again; this batch was not changed.",
            err,
        ) from err


def _check_keys(engine: Engine, codec: FernetCodec) -> int:
    # Refuse up front, before any row is rewritten, if some row needs a key
    # the rotation was not given: rewriting the others first would leave a
    # half-rotated table behind a wrong key list.
    key_id = oauthtoken.c[KEY_ID_COLUMN]
    count = select(func.count()).select_from(oauthtoken)
    foreign = count.where(key_id.is_not(None), key_id.not_in(codec.key_ids))
    with engine.connect() as connection:
        total = connection.execute(count).scalar_one()
        unknown = connection.execute(foreign).scalar_one()
    if unknown:
        raise key_mismatch_error(
            f"{unknown} of {total} rows were written with an encryption key "
            f"that is not in the list"
        )
    return total


def _lock_batch(connection: Connection, last_id: str | None, batch_size: int):
    query = select(oauthtoken).order_by(oauthtoken.c.id).limit(batch_size)
    if last_id is not None:
        query = query.where(oauthtoken.c.id > last_id)
    if connection.dialect.name != "sqlite":
        # An application saving one of these rows now waits for the batch's
        # commit rather than having its write replaced by the old value.
        # SQLite needs no row locks: the batch holds the database's write lock.
        query = query.with_for_update()
    return connection.execute(query).mappings().all()


def _progress(progress: bool | ProgressCallback | None, total: int) -> ProgressCallback:
    if callable(progress):
        return progress
    stream = sys.stderr
    if progress is None:
        progress = stream.isatty()
    if not progress:
        return lambda done, total: None
    return ProgressBar(stream, total)


class ProgressBar:
    """A one-line progress bar, redrawn in place; needs no dependency."""

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int) -> None:
        self._stream = stream
        self._drawn = False
        self(0, total)

    def __call__(self, done: int, total: int) -> None:
        filled = self.WIDTH if total == 0 else self.WIDTH * done // total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self._stream.write(f"\rRotating keys [{bar}] {done}/{total} rows")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
