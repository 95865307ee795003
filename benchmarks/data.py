"""The users a benchmark stores, and the SDK tokens it finds and saves."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

# Far in the future (2030), so no lookup ever finds a token due for refresh:
# the benchmark measures the hot path, not the refresh lease.
FAR_EXPIRY_MS = 1893456000000

CLIENT_ID = "1000.BENCHCLIENTID0000000000000000"
CLIENT_SECRET = "bench0client0secret0000000000000000000000"
REDIRECT_URL = "https://app.example.com/oauth/callback"
API_DOMAIN = "https://www.zohoapis.com"


@dataclass(frozen=True)
class Users:
    """``count`` users, each with a name, a row id and a refresh token."""

    names: list[str]
    ids: list[str]
    refresh_tokens: list[str]

    def __len__(self) -> int:
        return len(self.names)


def _hex(rng: random.Random, bits: int = 128) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def make_users(count: int, seed: int = 1) -> Users:
    """Return ``count`` users named the way the SDK names them (email:org)."""
    rng = random.Random(seed)
    names = [f"user{i:06d}@example.com:700{i % 7}" for i in range(count)]
    # Random ids like the store's own (uuid4 hex), so inserts spread over the
    # primary key as they do in production.
    ids = [_hex(rng) for _ in range(count)]
    refresh = [f"1000.{_hex(rng)}.{_hex(rng)}" for _ in range(count)]
    return Users(names, ids, refresh)


def access_token(user: int, serial: int) -> str:
    """Return an access token unique to this user and save."""
    return f"1000.{user:08x}{serial:012x}{'0' * 12}.{'a' * 32}"


def table_rows(users: Users) -> Iterator[dict[str, Any]]:
    """Yield the ``oauthtoken`` rows of ``users``, as the store would write them."""
    for i, name in enumerate(users.names):
        yield {
            "id": users.ids[i],
            "user_name": name,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": users.refresh_tokens[i],
            "access_token": access_token(i, 0),
            "grant_token": None,
            "expiry_time": FAR_EXPIRY_MS,
            "redirect_url": REDIRECT_URL,
            "api_domain": API_DOMAIN,
            "refresh_lease_until": None,
        }


def csv_rows(users: Users) -> Iterator[list[str]]:
    """Yield the SDK ``FileStore`` CSV rows of ``users``, numbered as it numbers."""
    for i, name in enumerate(users.names):
        yield [
            str(i + 1),
            name,
            CLIENT_ID,
            CLIENT_SECRET,
            users.refresh_tokens[i],
            access_token(i, 0),
            "",
            str(FAR_EXPIRY_MS),
            REDIRECT_URL,
            API_DOMAIN,
        ]


def lookup(name: str) -> OAuthToken:
    """Return a token carrying only a user name, as a new request's does."""
    return OAuthToken(user_signature=UserSignature(name))


def refreshed(
    users: Users, user: int, serial: int, *, row_id: str | None
) -> OAuthToken:
    """Return the token the SDK saves after refreshing ``user``'s access token.

    ``row_id`` is the id the SDK's token carries from its lookup; None saves
    by user name instead.
    """
    token = OAuthToken(
        user_signature=UserSignature(users.names[user]),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=users.refresh_tokens[user],
        access_token=access_token(user, serial),
    )
    token.set_expires_in(str(FAR_EXPIRY_MS))
    token.set_redirect_url(REDIRECT_URL)
    token.set_api_domain(API_DOMAIN)
    if row_id is not None:
        token.set_id(row_id)
    return token
