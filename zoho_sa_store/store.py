"""``SQLAlchemyTokenStore``: the Zoho SDK's ``TokenStore`` on any SQL database."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Insert,
    Select,
    bindparam,
    delete,
    or_,
    select,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.api.authenticator.store.token_store import TokenStore

from . import migrate, rotation, upsert
from .clock import local_now_ms
from .encryption import (
    DIGEST_COLUMNS,
    KEY_ID_COLUMN,
    PlainCodec,
    key_mismatch_error,
    make_codec,
)
from .engine import (
    CONNECT_TIMEOUT_SECONDS,
    DatabaseURL,
    build_engine,
    is_sqlite_memory,
    resolve_url,
    safe_url,
)
from .errors import database_error, store_error
from .mapping import (
    LookupKey,
    fill_token,
    lookup_key,
    row_values,
    save_key,
    token_from_row,
)
from .model import oauthtoken
from .refresh import RefreshCoordinator, RefreshSettings, is_due
from .work import first_row, write

log = logging.getLogger(__name__)

T = TypeVar("T")

UPGRADE_HINT = "run `zoho-sa-store upgrade --url URL` (or `zoho_sa_store.upgrade(url)`)"


class SQLAlchemyTokenStore(TokenStore):
    """Keep the Zoho SDK's OAuth tokens in a SQL database.

    ``url`` is a database URL (``sqlite:///tokens.db``,
    ``postgresql+psycopg://…``, ``mysql+pymysql://…``), a
    ``sqlalchemy.engine.URL``, or an existing ``Engine``, which is used as it
    is. When it is None, ``ZOHO_TOKEN_STORE_URL`` is read.

    With ``refresh_coordination`` on (the default), a token about to expire
    is refreshed by one caller across all processes and hosts sharing the
    database, while the others wait up to ``refresh_wait_seconds`` for the
    result; a caller that does not finish within ``refresh_lease_seconds``
    loses its turn. See ``zoho_sa_store.refresh`` for how.

    ``connect_timeout_seconds`` bounds how long opening a connection to a
    database server may take, so that a server that is down is an error
    rather than a hang.

    ``encryption_keys`` is a list of Fernet keys (``zoho-sa-store
    generate-key`` makes one; needs the ``crypto`` extra). The first key
    encrypts the client secret and the refresh, access and grant tokens; every
    key decrypts, so a key being retired stays in the list until
    :meth:`rotate_keys` has run. Without keys nothing is encrypted.
    ``encryption.keys_from_environment()`` reads them from
    ``ZOHO_TOKEN_STORE_KEYS``. A row written with a key the store does not
    hold is never overwritten, and reading it raises an ``SDKException`` that
    says the encryption key does not match. See ``zoho_sa_store.encryption``.

    One instance is meant to be shared by every thread of a process. On
    SQLite the store creates and upgrades its table on first use; on a server
    database it never changes the schema, and a missing or outdated table is
    an error that names the upgrade command.
    """

    def __init__(
        self,
        url: DatabaseURL | None = None,
        encryption_keys: Iterable[str | bytes] | None = None,
        *,
        refresh_coordination: bool = True,
        refresh_lease_seconds: float = 10.0,
        refresh_wait_seconds: float = 20.0,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self._codec: PlainCodec = make_codec(encryption_keys)
        url = resolve_url(url)
        self._engine = build_engine(url, connect_timeout_seconds)
        # Engines made here run in autocommit mode, where a COMMIT would be a
        # wasted round trip (PyMySQL sends one anyway). An engine handed in
        # may not be, so work done on it is committed.
        self._commits = isinstance(url, Engine)
        self._dialect = self._engine.dialect.name
        if not upsert.supports(self._dialect):
            raise store_error(
                f"The '{self._dialect}' database is not supported: use SQLite, "
                f"PostgreSQL, MySQL or MariaDB."
            )
        # Known once the dialect has met the server (MariaDB 10.5 and later
        # can return the id of the row an upsert wrote; MySQL cannot).
        self._returning = False
        self._schema_checked = False
        self._schema_lock = threading.Lock()
        # An in-memory SQLite database lives in one connection that all
        # threads share; they must take turns on it.
        memory = is_sqlite_memory(self._engine.url)
        self._turn = threading.Lock() if memory else contextlib.nullcontext()
        self._refresh = RefreshSettings(
            enabled=refresh_coordination,
            lease_seconds=refresh_lease_seconds,
            wait_seconds=refresh_wait_seconds,
        )
        self._coordinator = RefreshCoordinator(self._refresh, self._run)
        self._find_queries: dict[str, Select] = {}
        self._upserts: dict[tuple[str, bool, bool], Insert] = {}

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine the store uses."""
        return self._engine

    @property
    def encrypts(self) -> bool:
        """Tell whether the store encrypts what it saves."""
        return self._codec.encrypts

    def __repr__(self) -> str:
        # The number of keys only, never a key.
        keys = len(self._codec.key_ids)
        encryption = f" encryption_keys={keys}" if keys else ""
        return f"<SQLAlchemyTokenStore url={safe_url(self._engine)!r}{encryption}>"

    def find_token(self, token: OAuthToken) -> OAuthToken | None:
        """Fill ``token`` from its stored row and return it; None if not found.

        The row is looked up by the key ``mapping.lookup_key`` picks. Only
        the fields that are None on ``token`` are filled.
        """
        key = lookup_key(token)
        if key is None:
            return None
        query, values = self._find_query(key)
        row = self._run("find the token", first_row(query, values))
        row, refresh_here = self._settle(row)
        if row is None:
            log.debug("No token stored for that %s", key.column)
            return None
        fill_token(token, self._codec.reveal(row))
        if refresh_here:
            _mark_due(token)
        return token

    def find_token_by_id(self, id: str) -> OAuthToken:
        """Return a new token built from the row with this id."""
        query, values = self._find_query(LookupKey("id", id))
        row = self._run("find the token by id", first_row(query, values))
        row, refresh_here = self._settle(row)
        if row is None:
            raise store_error(
                f"No token is stored with the id {id!r}: check the id, or save "
                f"the token first."
            )
        token = token_from_row(self._codec.reveal(row))
        if refresh_here:
            _mark_due(token)
        return token

    def save_token(self, token: OAuthToken) -> None:
        """Insert or update the token's row in one statement and set its id.

        The row is the one with the token's id when it has one, else the one
        its lookup key finds. Fields that are None on the token keep their
        stored values. With keys, the secret and the tokens are written
        encrypted with the first key, and a row found by a digest under
        another key gets the first key's digest.

        A row written with a key the store does not hold is not touched: the
        save raises the key-mismatch ``SDKException`` instead.
        """
        key = save_key(token)
        if key is None:
            raise store_error(
                "The token cannot be saved: it has no id, user name, grant, "
                "refresh or access token to identify its row."
            )
        if not (
            token.get_refresh_token()
            or token.get_access_token()
            or token.get_grant_token()
        ):
            raise store_error(
                "The token cannot be saved: it has no refresh, access or grant token."
            )
        new_id = key.value if key.column == "id" else uuid.uuid4().hex
        row = {"id": new_id, **self._codec.protect(row_values(token))}
        key_column = DIGEST_COLUMNS.get(key.column, key.column)
        stored_keys = None
        if key_column != key.column:
            stored_keys = self._codec.lookup_digests(key.value)
            if stored_keys == [row[key_column]]:
                stored_keys = None  # no other digest to look for

        values = upsert.parameters(row, stored_keys)

        def upsert_row(connection: Connection) -> str | None:
            returning = self._returning
            statement = self._upsert(key_column, stored_keys is not None)
            try:
                result = connection.execute(statement, values)
            except IntegrityError as err:
                self._explain_refused_save(connection, row, err)
                raise
            if returning:
                row_id = result.scalar_one_or_none()
            elif self._dialect not in ("mysql", "mariadb") and result.rowcount == 0:
                row_id = None
            elif key.column == "id":
                row_id = new_id
            else:
                # MySQL has no RETURNING: read the id of the row just written.
                written = oauthtoken.c[key_column] == row[key_column]
                row_id = connection.execute(
                    select(oauthtoken.c.id).where(written)
                ).scalar_one()
            return row_id

        # Running the upsert twice, should the first attempt's connection
        # drop, leaves the same row: the second finds the first's by its key.
        row_id = self._run("save the token", upsert_row)
        if row_id is None:
            # On SQLite and PostgreSQL the guarded update simply skips a row
            # the store's keys cannot open.
            raise key_mismatch_error(
                "The token's row was written with an encryption key this store "
                "does not hold, so it was not overwritten"
            )
        token.set_id(row_id)
        log.debug("Saved the token with id %s by its %s", row_id, key.column)

    def delete_token(self, id: str) -> None:
        """Delete the row with this id; an unknown id is not an error."""
        statement = delete(oauthtoken).where(oauthtoken.c.id == id)
        self._run("delete the token", write(statement))

    def get_tokens(self) -> list[OAuthToken]:
        """Return every stored token, each a new, fully populated token."""
        query = select(oauthtoken).order_by(oauthtoken.c.id)
        rows = self._run(
            "list the tokens",
            lambda connection: connection.execute(query).mappings().all(),
        )
        return [token_from_row(self._codec.reveal(row)) for row in rows]

    def delete_tokens(self) -> None:
        """Delete every stored token."""
        self._run("delete the tokens", write(delete(oauthtoken)))
        log.info("Deleted every token in %s", safe_url(self._engine))

    def rotate_keys(
        self,
        batch_size: int = rotation.DEFAULT_BATCH_SIZE,
        progress: bool | rotation.ProgressCallback | None = None,
    ) -> rotation.RotationReport:
        """Re-encrypt every row with the first key and recompute its digests.

        Rows are read and rewritten ``batch_size`` at a time, in primary-key
        order, each batch in its own transaction with its rows locked, so an
        application saving at the same moment waits for the batch instead of
        losing its write. Rows already under the first key are skipped, so an
        interrupted rotation is finished by running it again. Rows written
        before encryption was turned on are encrypted.

        Before anything is written, every row's key is checked: if some row
        was written with a key the store does not hold, the key-mismatch
        ``SDKException`` is raised and nothing changes. ``progress`` is True
        for a progress bar on stderr, False for none, a callable to be told
        ``(rows done, total)`` after each batch, or None (the default) for a
        bar when stderr is a terminal.
        """
        if not self._codec.encrypts:
            raise key_mismatch_error(
                "Rotating keys needs the keys: give the store encryption_keys "
                "(or set ZOHO_TOKEN_STORE_KEYS), the new key first"
            )
        if not self._schema_checked:
            self._check_schema()
        try:
            with self._turn:
                return rotation.rotate(self._engine, self._codec, batch_size, progress)
        except SQLAlchemyError as err:
            where = safe_url(self._engine)
            raise database_error("rotate the encryption keys", where, err) from err

    def dispose(self) -> None:
        """Close the store's pooled connections; it reconnects when used again."""
        self._engine.dispose()

    def _find_query(self, key: LookupKey) -> tuple[Select, dict[str, Any]]:
        """Return the query that finds the row of a lookup key, and its values.

        Each query is built once per key column and reused: building and
        caching a new statement for every call costs more than running it.
        Tokens are found by their digests (see ``encryption``), never by their
        values, which may be ciphertext.
        """
        digest_column = DIGEST_COLUMNS.get(key.column)
        query = self._find_queries.get(key.column)
        if query is None:
            if digest_column is None:
                condition = oauthtoken.c[key.column] == bindparam("key")
            else:
                column = oauthtoken.c[digest_column]
                condition = column.in_(bindparam("key", expanding=True))
            query = self._find_queries[key.column] = select(oauthtoken).where(condition)
        if digest_column is None:
            return query, {"key": key.value}
        return query, {"key": self._codec.lookup_digests(key.value)}

    def _upsert(self, key_column: str, looks_up_stored_key: bool) -> Insert:
        """Return the upsert for a key column, built once and then reused."""
        shape = (key_column, self._returning, looks_up_stored_key)
        statement = self._upserts.get(shape)
        if statement is None:
            statement = upsert.build_upsert(
                self._dialect,
                key_column,
                self._returning,
                writable=self._writable(),
                looks_up_stored_key=looks_up_stored_key,
            )
            if not self._returning:
                # SQLAlchemy reads an INSERT's row count only when asked to.
                statement = statement.execution_options(preserve_rowcount=True)
            self._upserts[shape] = statement
        return statement

    def _writable(self) -> ColumnElement[bool]:
        """Return the condition a stored row meets when a save may update it."""
        key_id = oauthtoken.c[KEY_ID_COLUMN]
        if not self._codec.key_ids:
            return key_id.is_(None)
        return or_(key_id.is_(None), key_id.in_(self._codec.key_ids))

    def _explain_refused_save(
        self, connection: Connection, row: Mapping[str, Any], error: IntegrityError
    ) -> None:
        """Raise the key-mismatch error if the save was refused for its key.

        MySQL refuses a guarded save with the same error as a clash with
        another row, and anywhere an insert can clash with a row it did not
        find because that row's digests are under a foreign key. Only this
        failure path pays for the extra query.
        """
        identifying = [oauthtoken.c.id == row["id"]]
        if row["user_name"] is not None:
            identifying.append(oauthtoken.c.user_name == row["user_name"])
        query = select(oauthtoken.c[KEY_ID_COLUMN]).where(or_(*identifying))
        key_ids = connection.execute(query).scalars().all()
        if any(not self._codec.can_write_over(key_id) for key_id in key_ids):
            raise key_mismatch_error(
                "The token's row was written with an encryption key this store "
                "does not hold, so it was not overwritten"
            ) from error

    def _run(self, action: str, work: Callable[[Connection], T]) -> T:
        """Call ``work`` with a pooled connection and return what it returns.

        Database errors become ``SDKException``. A connection the server has
        closed since its last use (a restart, a failover, a proxy's idle
        timeout) is only found out when a statement fails on it; SQLAlchemy
        then empties the pool, and ``work`` runs once more on a new
        connection. This costs nothing on calls that succeed, unlike a
        "ping" before every checkout.
        """
        if not self._schema_checked:
            self._check_schema()
        for attempt in (1, 2):
            try:
                with self._turn, self._engine.connect() as connection:
                    result = work(connection)
                    if self._commits:
                        connection.commit()
                    return result
            except DBAPIError as err:
                if attempt == 1 and err.connection_invalidated:
                    log.info(
                        "The database at %s closed a pooled connection; trying to "
                        "%s again on a new one",
                        safe_url(self._engine),
                        action,
                    )
                    continue
                raise database_error(action, safe_url(self._engine), err) from err
            except SQLAlchemyError as err:
                raise database_error(action, safe_url(self._engine), err) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle(self, row):
        """Return the row to hand over, and whether this caller refreshes it."""
        if row is None or not self._refresh.enabled or not is_due(row):
            return row, False
        return self._coordinator.settle(row)

    def _check_schema(self) -> None:
        # Once per store: on SQLite bring the table up to date, elsewhere
        # make sure an operator has.
        with self._schema_lock:
            if self._schema_checked:
                return
            try:
                if self._dialect == "sqlite":
                    with self._turn:
                        migrate.upgrade(self._engine)
                else:
                    self._require_current_schema()
            except SQLAlchemyError as err:
                where = safe_url(self._engine)
                raise database_error("reach the token table", where, err) from err
            self._returning = self._engine.dialect.insert_returning
            self._schema_checked = True

    def _require_current_schema(self) -> None:
        with self._engine.connect() as connection:
            current = migrate.current_revision(connection)
        head = migrate.head_revision()
        if current is None:
            raise store_error(
                f"The token table is missing at {safe_url(self._engine)}: "
                f"{UPGRADE_HINT} before starting the application."
            )
        if current != head:
            raise store_error(
                f"The token table at {safe_url(self._engine)} is at revision "
                f"{current}, not {head}: {UPGRADE_HINT}."
            )


def _mark_due(token: OAuthToken) -> None:
    # This caller holds the refresh lease: make sure the SDK refreshes now,
    # even if a few seconds are left before it would have on its own.
    token.set_expires_in(str(local_now_ms()))
