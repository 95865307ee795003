"""The mapping between an SDK ``OAuthToken`` and a row of the token table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from .errors import store_error

# Columns a save writes, in table order; ``id`` is chosen by the store.
VALUE_COLUMNS = (
    "user_name",
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
    "grant_token",
    "expiry_time",
    "redirect_url",
    "api_domain",
)


class LookupKey(NamedTuple):
    """The column that identifies a token's row, and the value to match."""

    column: str
    value: str


def user_name_of(token: OAuthToken) -> str | None:
    """Return the user name of the token's signature, or None."""
    signature = token.get_user_signature()
    return None if signature is None else signature.get_name()


def lookup_key(token: OAuthToken) -> LookupKey | None:
    """Pick the key that finds a token's row, in the order the SDK uses.

    A token with a user signature is found by its user name and by nothing
    else: an empty name finds nothing. Otherwise the access token, when the
    token carries no client credentials; then the grant token; then the
    refresh token. A token with none of these but an id is found by its id,
    which is what the SDK's ``OAuthToken.revoke`` relies on. None means the
    token has no usable key.
    """
    if token.get_user_signature() is not None:
        name = user_name_of(token)
        return LookupKey("user_name", name) if name else None
    access_token = token.get_access_token()
    if (
        access_token
        and token.get_client_id() is None
        and token.get_client_secret() is None
    ):
        return LookupKey("access_token", access_token)
    if token.get_grant_token():
        return LookupKey("grant_token", token.get_grant_token())
    if token.get_refresh_token():
        return LookupKey("refresh_token", token.get_refresh_token())
    if token.get_id():
        return LookupKey("id", token.get_id())
    return None


def save_key(token: OAuthToken) -> LookupKey | None:
    """Pick the key that identifies the row a save writes: the id first."""
    if token.get_id():
        return LookupKey("id", token.get_id())
    return lookup_key(token)


def expiry_to_row(expiry_time: str | None) -> int | None:
    """Turn the SDK's expiry (a string of epoch milliseconds) into a number."""
    if expiry_time is None or expiry_time == "":
        return None
    try:
        return int(expiry_time)
    except (TypeError, ValueError) as err:
        raise store_error(
            "The token's expiry time is not a number of epoch milliseconds."
        ) from err


def row_values(token: OAuthToken) -> dict[str, Any]:
    """Return the column values a save writes; None means keep what is stored."""
    return {
        "user_name": user_name_of(token) or None,
        "client_id": token.get_client_id(),
        "client_secret": token.get_client_secret(),
        "refresh_token": token.get_refresh_token(),
        "access_token": token.get_access_token(),
        "grant_token": token.get_grant_token(),
        "expiry_time": expiry_to_row(token.get_expires_in()),
        "redirect_url": token.get_redirect_url(),
        "api_domain": token.get_api_domain(),
    }


def fill_token(token: OAuthToken, row: Mapping[str, Any]) -> OAuthToken:
    """Fill the fields that are None on ``token`` from a stored row."""
    if token.get_id() is None:
        token.set_id(row["id"])
    if token.get_user_signature() is None and row["user_name"] is not None:
        token.set_user_signature(UserSignature(row["user_name"]))
    if token.get_client_id() is None:
        token.set_client_id(row["client_id"])
    if token.get_client_secret() is None:
        token.set_client_secret(row["client_secret"])
    if token.get_refresh_token() is None:
        token.set_refresh_token(row["refresh_token"])
    if token.get_access_token() is None:
        token.set_access_token(row["access_token"])
    if token.get_grant_token() is None:
        token.set_grant_token(row["grant_token"])
    if token.get_expires_in() is None and row["expiry_time"] is not None:
        token.set_expires_in(str(row["expiry_time"]))
    if token.get_redirect_url() is None:
        token.set_redirect_url(row["redirect_url"])
    if token.get_api_domain() is None:
        token.set_api_domain(row["api_domain"])
    return token


def token_from_row(row: Mapping[str, Any]) -> OAuthToken:
    """Build a new, fully populated ``OAuthToken`` from a stored row.

    The SDK's constructor insists on a grant or refresh token with client
    credentials, which a stored row need not have, so the token is made the
    way the SDK's own stores make theirs and every field is then set.
    """
    token = object.__new__(OAuthToken)
    token.set_id(row["id"])
    name = row["user_name"]
    token.set_user_signature(None if name is None else UserSignature(name))
    token.set_client_id(row["client_id"])
    token.set_client_secret(row["client_secret"])
    token.set_refresh_token(row["refresh_token"])
    token.set_access_token(row["access_token"])
    token.set_grant_token(row["grant_token"])
    expiry = row["expiry_time"]
    token.set_expires_in(None if expiry is None else str(expiry))
    token.set_redirect_url(row["redirect_url"])
    token.set_api_domain(row["api_domain"])
    # ``OAuthToken.get_token`` reads this private flag, which has no setter;
    # the SDK's constructor sets it to True.
    token._OAuthToken__find_user = True
    return token
