"""Small builders of SDK tokens for the tests."""

from __future__ import annotations

from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature


def user_token(name: str, **fields) -> OAuthToken:
    """A token as the SDK saves it after a grant exchange."""
    values = {
        "client_id": "client-id",
        "client_secret": "client-secret",
        "refresh_token": f"refresh-{name}",
        "access_token": f"access-{name}",
    }
    values.update(fields)
    expiry = values.pop("expiry_time", "1893456000000")
    token = OAuthToken(user_signature=UserSignature(name), **values)
    token.set_expires_in(expiry)
    return token


def lookup(name: str) -> OAuthToken:
    """A token that carries only a user name, as a new request's would."""
    return OAuthToken(user_signature=UserSignature(name))
