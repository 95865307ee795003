"""A tour of the store on embedded SQLite, against a loopback Zoho.

``zoho-sa-store demo`` runs the whole token life cycle with the real SDK and
no Zoho account: a grant token exchanged and saved, the token reused from a
new token object, an expiry and its refresh, and several processes meeting
one expiry with a single refresh between them. It prints each step with the
tokens masked and exits with 1 if any step does not behave as described.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from pathlib import Path

from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zohocrmsdk.src.com.zoho.crm.api.user_signature import UserSignature

from .clock import local_now_ms
from .display import mask
from .store import SQLAlchemyTokenStore
from .testing import LoopbackZoho, loopback_environment

PROCESSES = 6


class DemoFailure(Exception):
    """A step of the demo did not behave as the store promises."""


def fetch_access_token(store_url, zoho_url, user_name, start, results, options):
    """In a fresh process, let the SDK produce a user's access token.

    ``Initializer.initialize`` looks the token up and, when it is due,
    refreshes and saves it, as it does before every CRM API call. The outcome
    goes to ``results`` as ``("ok", access_token)`` or ``("error", text)``.
    """
    store = SQLAlchemyTokenStore(store_url, **options)
    token = OAuthToken(user_signature=UserSignature(user_name))
    try:
        start.wait(timeout=60)
        Initializer.initialize(
            environment=loopback_environment(zoho_url), token=token, store=store
        )
        results.put(("ok", token.get_access_token()))
    except Exception as err:  # reported to the parent, which decides
        results.put(("error", repr(err)))
    finally:
        store.dispose()


def run_demo(url: str | None = None, out=print) -> None:
    """Run every step; raise ``DemoFailure`` when one misbehaves."""
    with tempfile.TemporaryDirectory(prefix="zoho-sa-store-demo-") as folder:
        url = url or f"sqlite:///{Path(folder) / 'tokens.db'}"
        with LoopbackZoho(token_delay=0.3) as zoho:
            store = SQLAlchemyTokenStore(url)
            try:
                _tour(store, zoho, url, out)
            finally:
                store.dispose()
                Initializer.initializer = None
                Initializer.LOCAL.init = None


def _tour(store: SQLAlchemyTokenStore, zoho: LoopbackZoho, url: str, out) -> None:
    out(f"Store: {store!r}")
    out(f"Loopback Zoho: {zoho.url} (takes 300 ms per token call)")

    out("\n1. A user signs in: the SDK exchanges a grant token and saves the result")
    token = OAuthToken(
        client_id=zoho.client_id,
        client_secret="client-secret",
        grant_token=zoho.issue_grant_token(),
        redirect_url="https://app.example.invalid/callback",
    )
    Initializer.initialize(environment=zoho.environment, token=token, store=store)
    (row,) = store.get_tokens()
    user = row.get_user_signature().get_name()
    out(f"   saved row {row.get_id()} for {user}")
    out(f"   access token {mask(row.get_access_token())}")
    out(f"   refresh token {mask(row.get_refresh_token())}")
    _expect(zoho.calls["grant"] == 1, "the grant token was not exchanged once")

    out("\n2. A later request names only the user: the token comes from the store")
    zoho.reset_counters()
    again = OAuthToken(user_signature=UserSignature(user))
    Initializer.switch_user(token=again)
    access = Initializer.get_initializer().token.get_token()
    out(f"   access token {mask(access)}, accounts calls: {_token_calls(zoho)}")
    _expect(access == row.get_access_token(), "the stored token was not reused")
    _expect(_token_calls(zoho) == 0, "the accounts server was called")

    out("\n3. The access token expires: the SDK refreshes it into the same row")
    _expire(store, row.get_id())
    Initializer.switch_user(token=OAuthToken(user_signature=UserSignature(user)))
    access = Initializer.get_initializer().token.get_token()
    (refreshed,) = store.get_tokens()
    out(f"   new access token {mask(access)} in row {refreshed.get_id()}")
    _expect(zoho.calls["refresh"] == 1, "the token was not refreshed once")
    _expect(refreshed.get_id() == row.get_id(), "the refresh wrote another row")

    out(f"\n4. It expires again while {PROCESSES} processes serve the same user")
    _expire(store, refreshed.get_id())
    zoho.reset_counters()
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(
            target=fetch_access_token,
            args=(url, zoho.url, user, start, results, {}),
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    failures = [text for kind, text in outcomes if kind != "ok"]
    _expect(not failures, f"a process failed: {failures[:1]}")
    tokens = {access for _, access in outcomes}
    out(f"   {PROCESSES} processes got {len(tokens)} access token(s): ")
    for access in sorted(tokens):
        out(f"   {mask(access)}")
    out(f"   refresh calls seen by Zoho: {zoho.calls['refresh']}")
    _expect(zoho.calls["refresh"] == 1, "the processes refreshed more than once")
    _expect(len(tokens) == 1, "the processes ended with different tokens")
    out("\nEvery step behaved as expected.")


def _expire(store: SQLAlchemyTokenStore, row_id: str) -> None:
    # As time would: the stored access token now has one second left.
    token = store.find_token_by_id(row_id)
    token.set_expires_in(str(local_now_ms() + 1000))
    store.save_token(token)


def _token_calls(zoho: LoopbackZoho) -> int:
    calls = zoho.calls
    return calls["grant"] + calls["refresh"]


def _expect(condition: bool, failure: str) -> None:
    if not condition:
        raise DemoFailure(failure)
