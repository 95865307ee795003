"""Serve a loopback stand-in for Zoho's accounts server and the CRM user APIs.

The Zoho CRM SDK talks to two hosts while it saves a token: the accounts
server (``POST /oauth/v2/token`` to exchange a grant token or refresh an
access token, ``POST /oauth/v2/token/revoke``) and the CRM API
(``GET /crm/v8/users?type=CurrentUser`` and ``GET /crm/v8/org``, from which it
builds the user name ``email:zgid``). :class:`LoopbackZoho` answers all of
them on 127.0.0.1 so that tests can drive the real SDK without a network::

    with LoopbackZoho() as zoho:
        Initializer.initialize(
            environment=zoho.environment,
            token=OAuthToken(
                client_id=zoho.client_id,
                client_secret="client-secret",
                grant_token=zoho.issue_grant_token(),
            ),
            store=FileStore(path),
        )
        assert zoho.calls["grant"] == 1

A process other than the one running the server reaches it through its URL
alone: pass ``zoho.url`` to the child and build the environment there with
:func:`loopback_environment`.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from zohocrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter

__all__ = [
    "COUNTER_NAMES",
    "REVOKE_PATH",
    "TOKEN_PATH",
    "LoopbackZoho",
    "loopback_environment",
]

logger = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/v2/token"
REVOKE_PATH = TOKEN_PATH + "/revoke"

#: Keys of :attr:`LoopbackZoho.calls`. ``grant``, ``refresh``, ``revoke``,
#: ``current_user`` and ``org`` count every request to that endpoint, whatever
#: the answer; ``token_error`` counts token and revoke requests answered with an
#: error, ``unauthorized`` counts CRM requests answered with 401.
COUNTER_NAMES = (
    "grant",
    "refresh",
    "revoke",
    "current_user",
    "org",
    "token_error",
    "unauthorized",
)

_USERS_PATH = re.compile(r"/crm/v\d+/users/?")
_ORG_PATH = re.compile(r"/crm/v\d+/org/?")
_AUTH_PREFIX = "Zoho-oauthtoken "
_SCOPE = "ZohoCRM.users.READ,ZohoCRM.org.READ"
_JSON_TYPE = "application/json;charset=UTF-8"
_INVALID_TOKEN = {
    "code": "INVALID_TOKEN",
    "details": {},
    "message": "invalid oauth token",
    "status": "error",
}


def loopback_environment(base_url: str) -> DataCenter.Environment:
    """Build the SDK environment that sends every call to ``base_url``.

    Works without the :class:`LoopbackZoho` object, so a child process that
    was given only the URL can point its own SDK at the parent's server.
    """
    base = base_url.rstrip("/")
    return DataCenter.Environment(base, base + TOKEN_PATH, base)


def _new_token() -> str:
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


@dataclass(frozen=True)
class _Identity:
    email: str
    org_id: str


@dataclass
class _AccessGrant:
    identity: _Identity
    refresh_token: str
    expires_at: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: LoopbackZoho) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "LoopbackZoho/1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if method == "POST":
                params.update(self._form())
            status, body = self.server.app._handle(
                method, parts.path, params, self.headers.get("Authorization")
            )
        except Exception:
            logger.exception("loopback Zoho failed on %s %s", method, parts.path)
            status, body = 500, {"code": "INTERNAL_ERROR", "status": "error"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", _JSON_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The default line carries the query string, where tokens may travel.
        logger.debug("%s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


class LoopbackZoho:
    """Serve Zoho's token, revoke, current-user and org endpoints on 127.0.0.1.

    Every setting may be changed while the server runs; ``expires_in`` and
    ``token_delay`` are read on each request. Tokens issued by one instance
    are known only to that instance.
    """

    def __init__(
        self,
        *,
        email: str = "user@zylker.com",
        org_id: str = "42",
        expires_in: int = 3600,
        token_delay: float = 0.0,
        client_id: str = "client-id",
        client_secret: str = "client-secret",
    ) -> None:
        """Configure the stand-in; call :meth:`start` or use ``with`` to serve.

        Args:
            email: Email of the user that issued tokens belong to by default.
            org_id: The org's ``zgid`` that issued tokens belong to by default.
            expires_in: Lifetime in seconds of each access token issued.
            token_delay: Seconds slept before answering a grant or refresh.
            client_id: The only OAuth client id accepted.
            client_secret: The only OAuth client secret accepted.
        """
        if expires_in < 0:
            raise ValueError("expires_in must not be negative")
        if token_delay < 0:
            raise ValueError("token_delay must not be negative")
        self.email = email
        self.org_id = str(org_id)
        self.expires_in = int(expires_in)
        self.token_delay = float(token_delay)
        self.client_id = client_id
        self._client_secret = client_secret
        self._lock = threading.Lock()
        self._grant_tokens: dict[str, _Identity] = {}
        self._refresh_tokens: dict[str, _Identity] = {}
        self._access_tokens: dict[str, _AccessGrant] = {}
        self._failures_left = 0
        self._failure_error = "invalid_code"
        self._counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._in_flight = 0
        self._peak_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(url={self._url!r}, email={self.email!r}, "
            f"org_id={self.org_id!r}, running={self.running})"
        )

    def __enter__(self) -> LoopbackZoho:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> LoopbackZoho:
        """Listen on a free port of 127.0.0.1 and serve from a daemon thread.

        Returns the instance itself. Starting a running server does nothing;
        starting a stopped one listens on a new port and keeps issued tokens.
        """
        if self._server is not None:
            return self
        server = _Server(self)
        host, port = server.server_address[:2]
        self._url = f"http://{host}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # A short poll keeps stop(), which waits for the next poll, quick.
            kwargs={"poll_interval": 0.05},
            name=f"loopback-zoho-{port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("loopback Zoho serving on %s", self._url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; stopping twice does nothing."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    @property
    def running(self) -> bool:
        """Tell whether the server is listening."""
        return self._server is not None

    # -- addresses -------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._url is None:
            raise RuntimeError("LoopbackZoho has not been started")
        return self._url

    @property
    def accounts_url(self) -> str:
        """Return the token endpoint, the SDK's ``Environment.accounts_url``."""
        return self.url + TOKEN_PATH

    @property
    def revoke_url(self) -> str:
        """Return the revoke endpoint, which the SDK derives from accounts_url."""
        return self.url + REVOKE_PATH

    @property
    def environment(self) -> DataCenter.Environment:
        """Return an SDK environment whose API and accounts URLs are this server."""
        return loopback_environment(self.url)

    # -- tokens ----------------------------------------------------------------

    def issue_grant_token(
        self, *, email: str | None = None, org_id: str | None = None
    ) -> str:
        """Issue a grant token that can be exchanged once.

        ``email`` and ``org_id`` pick the user the resulting tokens belong to;
        they default to the instance's settings.
        """
        token = _new_token()
        with self._lock:
            self._grant_tokens[token] = self._identity(email, org_id)
        return token

    def issue_refresh_token(
        self, *, email: str | None = None, org_id: str | None = None
    ) -> str:
        """Issue a valid refresh token directly, without a grant exchange."""
        token = _new_token()
        with self._lock:
            self._refresh_tokens[token] = self._identity(email, org_id)
        return token

    def revoke_refresh_token(self, token: str) -> bool:
        """Invalidate a refresh token and the access tokens made from it.

        Returns whether the token was valid before.
        """
        with self._lock:
            return self._revoke(token)

    def expire_access_tokens(self) -> int:
        """Make every access token issued so far expired; return their count."""
        now = time.monotonic()
        with self._lock:
            for grant in self._access_tokens.values():
                grant.expires_at = min(grant.expires_at, now)
            return len(self._access_tokens)

    def is_access_token_valid(self, token: str) -> bool:
        """Tell whether the CRM endpoints would accept ``token`` now."""
        with self._lock:
            return self._identity_for_access(token) is not None

    def fail_next_token_calls(self, n: int, error: str = "invalid_code") -> None:
        """Answer the next ``n`` grant or refresh calls with ``{"error": error}``.

        Replaces any failures still pending; ``n=0`` cancels them.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        with self._lock:
            self._failures_left = n
            self._failure_error = error

    # -- counters --------------------------------------------------------------

    @property
    def calls(self) -> dict[str, int]:
        """Return a snapshot of the request counters, keyed by COUNTER_NAMES."""
        with self._lock:
            return dict(self._counters)

    @property
    def max_concurrent_token_calls(self) -> int:
        """Return the most grant or refresh calls that were in flight at once.

        A value of 1 after several calls shows that the callers took turns.
        """
        with self._lock:
            return self._peak_in_flight

    def reset_counters(self) -> None:
        """Set every request counter and the concurrency peak back to zero."""
        with self._lock:
            self._counters = dict.fromkeys(COUNTER_NAMES, 0)
            self._peak_in_flight = self._in_flight

    # -- request handling, called from server threads --------------------------

    def _handle(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        authorization: str | None,
    ) -> tuple[int, dict[str, Any]]:
        route = path.rstrip("/") or "/"
        if method == "POST" and route == TOKEN_PATH:
            return 200, self._token(params)
        if method == "POST" and route == REVOKE_PATH:
            return 200, self._revoke_call(params)
        if method == "GET" and _USERS_PATH.fullmatch(path):
            return self._crm("current_user", authorization, self._users_body)
        if method == "GET" and _ORG_PATH.fullmatch(path):
            return self._crm("org", authorization, self._org_body)
        return 404, {
            "code": "INVALID_URL_PATTERN",
            "details": {},
            "message": "Please check if the URL trying to access is a correct one",
            "status": "error",
        }

    def _token(self, params: dict[str, str]) -> dict[str, Any]:
        grant_type = params.get("grant_type")
        kind = {"authorization_code": "grant", "refresh_token": "refresh"}.get(
            grant_type or ""
        )
        with self._lock:
            if kind is not None:
                self._counters[kind] += 1
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            if self.token_delay:
                time.sleep(self.token_delay)
            with self._lock:
                body = self._token_locked(kind, params)
                if "error" in body:
                    self._counters["token_error"] += 1
        finally:
            with self._lock:
                self._in_flight -= 1
        return body

    def _token_locked(self, kind: str | None, params: dict[str, str]) -> dict[str, Any]:
        if kind is None:
            return {"error": "unsupported_grant_type"}
        if self._failures_left > 0:
            self._failures_left -= 1
            return {"error": self._failure_error}
        if (
            params.get("client_id") != self.client_id
            or params.get("client_secret") != self._client_secret
        ):
            return {"error": "invalid_client"}
        if kind == "grant":
            identity = self._grant_tokens.pop(params.get("code", ""), None)
            if identity is None:
                return {"error": "invalid_code"}
            refresh_token = _new_token()
            self._refresh_tokens[refresh_token] = identity
            body = self._access_body(identity, refresh_token)
            # Zoho hands out the refresh token only with the grant exchange.
            body["refresh_token"] = refresh_token
            return body
        refresh_token = params.get("refresh_token", "")
        identity = self._refresh_tokens.get(refresh_token)
        if identity is None:
            return {"error": "invalid_code"}
        return self._access_body(identity, refresh_token)

    def _access_body(self, identity: _Identity, refresh_token: str) -> dict[str, Any]:
        access_token = _new_token()
        self._access_tokens[access_token] = _AccessGrant(
            identity, refresh_token, time.monotonic() + self.expires_in
        )
        return {
            "access_token": access_token,
            "scope": _SCOPE,
            # The SDK swaps its environment for a Zoho data centre when
            # api_domain names one; its own URL keeps the SDK here.
            "api_domain": self.url,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }

    def _revoke_call(self, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self._counters["revoke"] += 1
            if self._revoke(params.get("token", "")):
                return {"status": "success"}
            self._counters["token_error"] += 1
            return {"error": "invalid_code"}

    def _revoke(self, token: str) -> bool:
        if self._refresh_tokens.pop(token, None) is None:
            return False
        for access_token, grant in list(self._access_tokens.items()):
            if grant.refresh_token == token:
                del self._access_tokens[access_token]
        return True

    def _crm(
        self,
        counter: str,
        authorization: str | None,
        render: Callable[[_Identity], dict[str, Any]],
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._counters[counter] += 1
            identity = None
            if authorization and authorization.startswith(_AUTH_PREFIX):
                token = authorization[len(_AUTH_PREFIX) :].strip()
                identity = self._identity_for_access(token)
            if identity is None:
                self._counters["unauthorized"] += 1
                return 401, dict(_INVALID_TOKEN)
        return 200, render(identity)

    def _identity_for_access(self, token: str) -> _Identity | None:
        grant = self._access_tokens.get(token)
        if grant is None or grant.expires_at <= time.monotonic():
            return None
        return grant.identity

    def _identity(self, email: str | None, org_id: str | None) -> _Identity:
        return _Identity(
            self.email if email is None else email,
            self.org_id if org_id is None else str(org_id),
        )

    @staticmethod
    def _users_body(identity: _Identity) -> dict[str, Any]:
        user_id = str(4_000_000_000_000_000 + zlib.crc32(identity.email.encode()))
        return {
            "users": [
                {
                    "id": user_id,
                    "zuid": user_id[-9:],
                    "email": identity.email,
                    "full_name": identity.email.partition("@")[0],
                    "status": "active",
                    "confirm": True,
                }
            ],
            "info": {"per_page": 200, "count": 1, "page": 1, "more_records": False},
        }

    @staticmethod
    def _org_body(identity: _Identity) -> dict[str, Any]:
        return {
            "org": [
                {
                    "id": str(
                        3_000_000_000_000_000 + zlib.crc32(identity.org_id.encode())
                    ),
                    "zgid": identity.org_id,
                    "company_name": "Zylker",
                    "primary_email": identity.email,
                    "domain_name": f"org{identity.org_id}",
                    "type": "production",
                }
            ]
        }
