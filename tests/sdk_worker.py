"""Code that runs the real SDK in a child process, for the multi-process tests.

Each function takes only plain values, builds its own store, and reports what
happened through a queue, so it can run under the ``spawn`` start method.
"""

from __future__ import annotations

import os

from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.demo import fetch_access_token

__all__ = ["fetch_access_token", "take_lease_and_die"]


def take_lease_and_die(store_url, user_name, results, options):
    """Take a due token's refresh lease, then die before refreshing it."""
    store = SQLAlchemyTokenStore(store_url, **options)
    token = store.find_token(OAuthToken(user_signature=UserSignature(user_name)))
    results.put(("holding", token.get_expires_in()))
    results.close()
    results.join_thread()  # the queue sends from a thread that _exit would kill
    # No cleanup, no save: as if the process had been killed mid-refresh.
    os._exit(3)
