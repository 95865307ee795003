"""What-if variants of the store, to measure the cheap fixes the benchmark found.

These are diagnostics, not proposals of code: each reproduces the store's own
``find_token`` and ``save_token`` through its private helpers and changes one
thing, so the benchmark can show in the same run what that thing costs.

The store builds a new ``select()`` for every find and a new upsert for every
save. SQLAlchemy then hits its compiled cache, but only after generating the
new statement's cache key, and on a find it also adapts the cached result
metadata to the new statement's columns. ``PrebuiltStatementsStore`` builds
each statement once, with bound parameters, and reuses it.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken

from zoho_sa_store import SQLAlchemyTokenStore, upsert
from zoho_sa_store.errors import store_error
from zoho_sa_store.mapping import (
    VALUE_COLUMNS,
    fill_token,
    lookup_key,
    row_values,
    save_key,
)
from zoho_sa_store.model import oauthtoken
from zoho_sa_store.store import _mark_due

# Bound parameter names must differ from column names in an INSERT.
_PREFIX = "p_"


class PrebuiltStatementsStore(SQLAlchemyTokenStore):
    """The store, with its SELECT and upsert statements built once per key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._finds: dict[str, sa.Select] = {}
        self._upserts: dict[tuple[str, bool], sa.Insert] = {}

    def _find_statement(self, column: str) -> sa.Select:
        statement = self._finds.get(column)
        if statement is None:
            key = oauthtoken.c[column]
            value = sa.bindparam(_PREFIX + "key", type_=key.type)
            statement = sa.select(oauthtoken).where(key == value)
            self._finds[column] = statement
        return statement

    def _upsert_statement(self, column: str, returning: bool) -> sa.Insert:
        statement = self._upserts.get((column, returning))
        if statement is None:
            row = {
                name: sa.bindparam(_PREFIX + name, type_=oauthtoken.c[name].type)
                for name in ("id", *VALUE_COLUMNS)
            }
            statement = upsert.build_upsert(self._dialect, column, row, returning)
            self._upserts[(column, returning)] = statement
        return statement

    def find_token(self, token: OAuthToken) -> OAuthToken | None:
        """Find as the store does, with the SELECT built once per key column."""
        key = lookup_key(token)
        if key is None:
            return None
        query = self._find_statement(key.column)
        with self._connection("find the token") as connection:
            result = connection.execute(query, {_PREFIX + "key": key.value})
            row = result.mappings().first()
        row, refresh_here = self._settle(row)
        if row is None:
            return None
        fill_token(token, row)
        if refresh_here:
            _mark_due(token)
        return token

    def save_token(self, token: OAuthToken) -> None:
        """Save as the store does, with the upsert built once per key column."""
        key = save_key(token)
        if key is None:
            raise store_error("The token cannot be saved: it has no key.")
        new_id = key.value if key.column == "id" else uuid.uuid4().hex
        row = {"id": new_id, **row_values(token)}
        parameters = {_PREFIX + name: value for name, value in row.items()}
        with self._connection("save the token") as connection:
            returning = self._returning
            statement = self._upsert_statement(key.column, returning)
            result = connection.execute(statement, parameters)
            if returning:
                row_id = result.scalar_one()
            elif key.column == "id":
                row_id = new_id
            else:
                row_id = connection.execute(
                    sa.select(oauthtoken.c.id).where(
                        oauthtoken.c[key.column] == key.value
                    )
                ).scalar_one()
            connection.commit()
        token.set_id(row_id)
