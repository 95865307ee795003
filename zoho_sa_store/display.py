"""Describing stored tokens to operators, with every token and secret masked."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken

from .mapping import user_name_of

MASK = "****"

# Below this length even four characters give away too much of a value.
_SHORTEST_PARTLY_SHOWN = 16
_SHOWN_CHARACTERS = 4


def mask(value: str | None) -> str | None:
    """Hide a token or secret, keeping at most its last four characters."""
    if value is None:
        return None
    if len(value) < _SHORTEST_PARTLY_SHOWN:
        return MASK
    return MASK + value[-_SHOWN_CHARACTERS:]


def expiry_millis(token: OAuthToken) -> int | None:
    """Return the token's expiry in epoch milliseconds, or None."""
    expiry = token.get_expires_in()
    if expiry is None or not re.fullmatch(r"-?[0-9]+", str(expiry)):
        return None
    return int(expiry)


def expiry_moment(expiry: int | None) -> datetime | None:
    """Return an expiry in epoch milliseconds as a UTC time, None if it is none."""
    if expiry is None:
        return None
    try:
        return datetime.fromtimestamp(expiry / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def expiry_text(expiry: int | None, now: datetime | None = None) -> str:
    """Render an expiry for people: a UTC time, and whether it has passed."""
    if expiry is None:
        return "-"
    moment = expiry_moment(expiry)
    if moment is None:
        return f"not a valid time ({expiry})"
    now = now or datetime.now(timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{text} (expired)" if moment <= now else text


def summary(token: OAuthToken, now: datetime | None = None) -> dict[str, Any]:
    """Describe a token for ``list``: what identifies it, and no token at all."""
    expiry = expiry_millis(token)
    moment = expiry_moment(expiry)
    now = now or datetime.now(timezone.utc)
    return {
        "id": token.get_id(),
        "user_name": user_name_of(token),
        "client_id": token.get_client_id(),
        "api_domain": token.get_api_domain(),
        "expiry_time": expiry,
        "expires_at": None if moment is None else moment.isoformat(),
        "expired": None if moment is None else moment <= now,
        "has_refresh_token": bool(token.get_refresh_token()),
    }


def details(token: OAuthToken, now: datetime | None = None) -> dict[str, Any]:
    """Describe a token for ``show``: the summary, and its secrets masked."""
    return {
        **summary(token, now),
        "client_secret": mask(token.get_client_secret()),
        "refresh_token": mask(token.get_refresh_token()),
        "access_token": mask(token.get_access_token()),
        "grant_token": mask(token.get_grant_token()),
        "redirect_url": token.get_redirect_url(),
    }


def natural_id_order(token_id: str | None) -> tuple:
    """Sort ids that are numbers (the SDK's own stores) as numbers."""
    if token_id is not None and token_id.isdecimal():
        return (0, int(token_id), "")
    return (1, 0, token_id or "")


def list_order(token: OAuthToken) -> tuple:
    """Sort tokens by user name, those without one last, then by id."""
    name = user_name_of(token)
    return (name is None, name or "", natural_id_order(token.get_id()))
