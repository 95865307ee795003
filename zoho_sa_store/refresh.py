"""One refresh per expiry: a lease on each row, taken through the database.

The SDK refreshes an access token when fewer than five seconds of it are
left, and it decides that in every process on its own. With many workers,
each one that serves a user when the token runs out would call Zoho's
accounts server, which allows only a handful of access tokens per refresh
token in ten minutes. So when a lookup finds a token about to expire, the
store lets exactly one caller refresh it:

1. The caller tries to take the row's lease with one conditional UPDATE: it
   succeeds only if no live lease is held *and* the row still has the expiry
   the caller read. A caller that read the old row just before someone else
   saved the fresh one therefore fails, and never refreshes a second time.
2. The lease holder gets the token back marked as due, so the SDK refreshes
   it; the SDK's ``save_token`` writes the new token and clears the lease.
3. Everyone else polls the row until a fresh token appears, and hands that
   to the SDK, which then has nothing to refresh. When the lease runs out
   first (the holder died, or its refresh failed) the next caller takes it
   over. When ``wait_seconds`` pass, a caller stops waiting and lets the SDK
   refresh on its own: no caller ever waits for ever.

A fresh token costs nothing here: the lookup's single SELECT already tells
whether the token is due.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select, update

from .clock import database_now_ms, local_now_ms
from .model import oauthtoken
from .work import write

log = logging.getLogger(__name__)

# The SDK refreshes a token with fewer than this many milliseconds left.
SDK_REFRESH_MARGIN_MS = 5000

# Start coordinating a little before the SDK would refresh, so that the
# moments spent between the lookup and the SDK's own check do not matter.
DUE_MARGIN_MS = SDK_REFRESH_MARGIN_MS + 2000

Row = Mapping[str, Any]


@dataclass(frozen=True)
class RefreshSettings:
    """How callers share the refresh of an expiring token.

    ``lease_seconds`` is how long one caller may take to refresh before
    another takes over; make it longer than a refresh round trip to Zoho.
    ``wait_seconds`` bounds how long a caller waits for someone else's
    refresh. ``poll_seconds`` is the first pause between looks at the row;
    pauses double up to ``max_poll_seconds``.
    """

    enabled: bool = True
    lease_seconds: float = 10.0
    wait_seconds: float = 20.0
    poll_seconds: float = 0.02
    max_poll_seconds: float = 0.25


def is_due(row: Row, now_ms: int | None = None) -> bool:
    """Tell whether the SDK is about to refresh the token in ``row``."""
    if not row["refresh_token"]:
        return False  # nothing to refresh with: the SDK needs a grant
    if not row["access_token"]:
        return True
    expiry = row["expiry_time"]
    if expiry is None:
        return False
    now_ms = local_now_ms() if now_ms is None else now_ms
    return expiry - now_ms < DUE_MARGIN_MS


def _lease_statement(row: Row, lease_ms: int):
    now = database_now_ms()
    table = oauthtoken.c
    return (
        update(oauthtoken)
        .where(table.id == row["id"])
        .where(table.expiry_time.is_not_distinct_from(row["expiry_time"]))
        .where(table.access_token.is_not_distinct_from(row["access_token"]))
        .where(
            or_(table.refresh_lease_until.is_(None), table.refresh_lease_until < now)
        )
        .values(refresh_lease_until=now + lease_ms)
    )


class RefreshCoordinator:
    """Decide, for a row found due, who refreshes it and what others get."""

    def __init__(
        self,
        settings: RefreshSettings,
        run: Callable[[str, Callable[[Connection], Any]], Any],
    ) -> None:
        # ``run(action, work)`` is the store's way to use a connection: it
        # reports database errors as the SDK's exceptions.
        self._settings = settings
        self._run = run

    def settle(self, row: Row) -> tuple[Row | None, bool]:
        """Return the row to hand to the SDK, and whether this caller refreshes.

        ``row`` was just read and found due.
        """
        settings = self._settings
        deadline = time.monotonic() + settings.wait_seconds
        pause = settings.poll_seconds
        while True:
            if self._take_lease(row):
                log.debug("Took the refresh lease of token %s", row["id"])
                return row, True
            if time.monotonic() >= deadline:
                log.warning(
                    "Waited %.1f s for another caller to refresh token %s; "
                    "refreshing it here",
                    settings.wait_seconds,
                    row["id"],
                )
                return row, True
            time.sleep(pause)
            pause = min(pause * 2, settings.max_poll_seconds)
            row = self._read(row["id"])
            if row is None or not is_due(row):
                return row, False

    def _take_lease(self, row: Row) -> bool:
        statement = _lease_statement(row, int(self._settings.lease_seconds * 1000))

        return self._run("take the refresh lease", write(statement)) == 1

    def _read(self, row_id: str) -> Row | None:
        query = select(oauthtoken).where(oauthtoken.c.id == row_id)
        return self._run(
            "read the token",
            lambda connection: connection.execute(query).mappings().first(),
        )
