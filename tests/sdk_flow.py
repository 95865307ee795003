"""Helpers shared by the tests that drive the real SDK."""

from __future__ import annotations

from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer

from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.testing import LoopbackZoho

CLIENT_ID = "client-id"
CLIENT_SECRET = "client-secret"


def sign_in(zoho: LoopbackZoho, store: SQLAlchemyTokenStore, **identity) -> OAuthToken:
    """Exchange a new grant token through the SDK, which saves the result."""
    token = OAuthToken(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        grant_token=zoho.issue_grant_token(**identity),
        redirect_url="https://app.example.invalid/callback",
    )
    Initializer.initialize(environment=zoho.environment, token=token, store=store)
    return token


def forget_initializer() -> None:
    """Clear the SDK's global initializer, so tests do not leak into each other."""
    Initializer.initializer = None
    Initializer.LOCAL.init = None


def expire(store: SQLAlchemyTokenStore, user_name: str) -> None:
    """Make the stored access token of a user look expired, as time would."""
    import sqlalchemy as sa

    from zoho_sa_store.model import oauthtoken

    with store.engine.connect() as connection:
        connection.execute(
            sa.update(oauthtoken)
            .where(oauthtoken.c.user_name == user_name)
            .values(expiry_time=1000)
        )
        connection.commit()
