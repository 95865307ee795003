"""Drive the real Zoho CRM SDK against the loopback stand-in."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.api.authenticator.store.file_store import FileStore
from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException
from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zohocrmsdk.src.com.zoho.crm.api.util.utility import Utility

from zoho_sa_store.testing import (
    COUNTER_NAMES,
    REVOKE_PATH,
    LoopbackZoho,
    loopback_environment,
)

pytest_plugins = ["zoho_sa_store.pytest_plugin"]

CLIENT_ID = "client-id"
CLIENT_SECRET = "client-secret"
REDIRECT_URL = "https://app.example.invalid/oauth/callback"


@pytest.fixture(autouse=True)
def _forget_sdk_initializer():
    # The SDK keeps its initializer in globals; a stale one would point the
    # next test at a server that has already stopped.
    yield
    Initializer.initializer = None
    Initializer.LOCAL.init = None


def initialize(
    zoho: LoopbackZoho,
    store_path: Path,
    *,
    grant_token: str | None = None,
    refresh_token: str | None = None,
    client_secret: str = CLIENT_SECRET,
) -> OAuthToken:
    token = OAuthToken(
        client_id=CLIENT_ID,
        client_secret=client_secret,
        grant_token=grant_token,
        refresh_token=refresh_token,
        redirect_url=REDIRECT_URL,
    )
    Initializer.initialize(
        environment=zoho.environment, token=token, store=FileStore(str(store_path))
    )
    return token


def read_rows(store_path: Path) -> list[dict[str, str]]:
    with open(store_path, newline="") as f:
        return list(csv.DictReader(f))


def push_expiry_into_past(store_path: Path) -> None:
    with open(store_path, newline="") as f:
        rows = list(csv.reader(f))
    column = rows[0].index("expiry_time")
    for row in rows[1:]:
        row[column] = str(int(time.time() * 1000) - 60_000)
    with open(store_path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_grant_exchange_saves_one_row_named_email_colon_org_id(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    store_path = tmp_path / "tokens.csv"
    grant_token = loopback_zoho.issue_grant_token()

    initialize(loopback_zoho, store_path, grant_token=grant_token)

    rows = read_rows(store_path)
    assert len(rows) == 1
    row = rows[0]
    assert row["user_name"] == "user@zylker.com:42"
    assert row["grant_token"] == grant_token
    assert row["refresh_token"].startswith("1000.")
    assert loopback_zoho.is_access_token_valid(row["access_token"])
    assert loopback_zoho.calls == {
        "grant": 1,
        "refresh": 0,
        "revoke": 0,
        "current_user": 1,
        "org": 1,
        "token_error": 0,
        "unauthorized": 0,
    }


def test_api_domain_in_token_answer_keeps_the_sdk_on_the_stand_in(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    store_path = tmp_path / "tokens.csv"
    initialize(loopback_zoho, store_path, grant_token=loopback_zoho.issue_grant_token())

    assert read_rows(store_path)[0]["api_domain"] == loopback_zoho.url
    environment = Initializer.get_initializer().environment
    assert environment.url == loopback_zoho.url
    assert environment.accounts_url == loopback_zoho.accounts_url


def test_expires_in_is_seconds_and_sdk_stores_epoch_millis(
    tmp_path: Path,
) -> None:
    store_path = tmp_path / "tokens.csv"
    with LoopbackZoho(expires_in=120) as zoho:
        before = now_ms()
        initialize(zoho, store_path, grant_token=zoho.issue_grant_token())
        after = now_ms()

    expiry = int(read_rows(store_path)[0]["expiry_time"])
    assert before + 120_000 <= expiry <= after + 120_000


def test_email_and_org_id_settings_name_the_stored_user(tmp_path: Path) -> None:
    store_path = tmp_path / "tokens.csv"
    with LoopbackZoho(email="ops@example.com", org_id="777") as zoho:
        initialize(zoho, store_path, grant_token=zoho.issue_grant_token())
        initialize(
            zoho,
            store_path,
            grant_token=zoho.issue_grant_token(email="b@example.com", org_id="9"),
        )

    names = [row["user_name"] for row in read_rows(store_path)]
    assert names == ["ops@example.com:777", "b@example.com:9"]


def test_expired_stored_access_token_is_refreshed_once(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    store_path = tmp_path / "tokens.csv"
    initialize(loopback_zoho, store_path, grant_token=loopback_zoho.issue_grant_token())
    first = read_rows(store_path)[0]
    push_expiry_into_past(store_path)
    loopback_zoho.reset_counters()

    initialize(loopback_zoho, store_path, refresh_token=first["refresh_token"])

    rows = read_rows(store_path)
    assert len(rows) == 1
    assert rows[0]["refresh_token"] == first["refresh_token"]
    assert rows[0]["access_token"] != first["access_token"]
    assert int(rows[0]["expiry_time"]) > now_ms()
    assert loopback_zoho.is_access_token_valid(rows[0]["access_token"])
    calls = loopback_zoho.calls
    assert (calls["refresh"], calls["grant"]) == (1, 0)
    # The user name is already stored, so the SDK does not look it up again.
    assert (calls["current_user"], calls["org"]) == (0, 0)


def test_unexpired_stored_access_token_is_reused_without_any_call(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    store_path = tmp_path / "tokens.csv"
    initialize(loopback_zoho, store_path, grant_token=loopback_zoho.issue_grant_token())
    first = read_rows(store_path)[0]
    loopback_zoho.reset_counters()

    initialize(loopback_zoho, store_path, refresh_token=first["refresh_token"])

    assert read_rows(store_path)[0]["access_token"] == first["access_token"]
    assert set(loopback_zoho.calls.values()) == {0}


def test_refresh_token_issued_directly_works_without_a_grant(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    store_path = tmp_path / "tokens.csv"

    initialize(
        loopback_zoho,
        store_path,
        refresh_token=loopback_zoho.issue_refresh_token(org_id="5"),
    )

    assert read_rows(store_path)[0]["user_name"] == "user@zylker.com:5"
    calls = loopback_zoho.calls
    assert (calls["grant"], calls["refresh"], calls["current_user"]) == (0, 1, 1)


def test_unknown_grant_token_is_rejected_with_invalid_code(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    with pytest.raises(SDKException, match="invalid_code"):
        initialize(loopback_zoho, tmp_path / "tokens.csv", grant_token="1000.x.y")

    calls = loopback_zoho.calls
    assert (calls["grant"], calls["token_error"], calls["current_user"]) == (1, 1, 0)


def test_grant_token_is_accepted_only_once(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    grant_token = loopback_zoho.issue_grant_token()
    initialize(loopback_zoho, tmp_path / "first.csv", grant_token=grant_token)

    # A fresh store has no row to reuse, so the SDK exchanges the code again.
    with pytest.raises(SDKException, match="invalid_code"):
        initialize(loopback_zoho, tmp_path / "second.csv", grant_token=grant_token)
    assert loopback_zoho.calls["grant"] == 2


def test_wrong_client_secret_is_rejected_as_invalid_client(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    grant_token = loopback_zoho.issue_grant_token()

    with pytest.raises(SDKException, match="invalid_client"):
        initialize(
            loopback_zoho,
            tmp_path / "tokens.csv",
            grant_token=grant_token,
            client_secret="not-the-secret",
        )
    # A rejected client does not use up the grant token.
    initialize(loopback_zoho, tmp_path / "tokens.csv", grant_token=grant_token)


def test_revoked_refresh_token_cannot_refresh_and_its_access_tokens_die(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    store_path = tmp_path / "tokens.csv"
    initialize(loopback_zoho, store_path, grant_token=loopback_zoho.issue_grant_token())
    row = read_rows(store_path)[0]

    assert loopback_zoho.revoke_refresh_token(row["refresh_token"]) is True
    assert loopback_zoho.revoke_refresh_token(row["refresh_token"]) is False
    assert not loopback_zoho.is_access_token_valid(row["access_token"])
    push_expiry_into_past(store_path)
    with pytest.raises(SDKException, match="invalid_code"):
        initialize(loopback_zoho, store_path, refresh_token=row["refresh_token"])


def test_sdk_revoke_endpoint_revokes_once(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    initialize(
        loopback_zoho,
        tmp_path / "tokens.csv",
        grant_token=loopback_zoho.issue_grant_token(),
    )
    refresh_token = read_rows(tmp_path / "tokens.csv")[0]["refresh_token"]
    revoke_url = loopback_zoho.environment.accounts_url + "/revoke"
    assert revoke_url == loopback_zoho.url + REVOKE_PATH

    assert OAuthToken.revoke_refresh_token(refresh_token, revoke_url) is True
    assert OAuthToken.revoke_refresh_token(refresh_token, revoke_url) is False
    assert loopback_zoho.calls["revoke"] == 2


def test_fail_next_token_calls_fails_exactly_that_many(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    grant_token = loopback_zoho.issue_grant_token()
    loopback_zoho.fail_next_token_calls(2, error="access_denied")

    for _ in range(2):
        with pytest.raises(SDKException, match="access_denied"):
            initialize(loopback_zoho, tmp_path / "tokens.csv", grant_token=grant_token)
    initialize(loopback_zoho, tmp_path / "tokens.csv", grant_token=grant_token)

    calls = loopback_zoho.calls
    assert (calls["grant"], calls["token_error"]) == (3, 2)


def test_crm_endpoints_answer_401_invalid_token_without_a_valid_token() -> None:
    with LoopbackZoho(expires_in=0) as zoho:
        access_token = requests.post(
            zoho.accounts_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": zoho.issue_refresh_token(),
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            timeout=5,
        ).json()["access_token"]
        headers = [
            {},
            {"Authorization": "Zoho-oauthtoken 1000.unknown.token"},
            {"Authorization": f"Bearer {access_token}"},
            {"Authorization": f"Zoho-oauthtoken {access_token}"},  # expired
        ]
        for header in headers:
            for path in ("/crm/v8/users?type=CurrentUser", "/crm/v8/org"):
                answer = requests.get(zoho.url + path, headers=header, timeout=5)
                assert answer.status_code == 401
                assert answer.json() == {
                    "code": "INVALID_TOKEN",
                    "details": {},
                    "message": "invalid oauth token",
                    "status": "error",
                }
        assert zoho.calls["unauthorized"] == 8


def test_sdk_reads_the_401_answer_as_an_invalid_token_api_exception(
    loopback_zoho: LoopbackZoho, tmp_path: Path
) -> None:
    initialize(
        loopback_zoho,
        tmp_path / "tokens.csv",
        grant_token=loopback_zoho.issue_grant_token(),
    )

    with pytest.raises(SDKException) as caught:
        Utility.get_user_name("1000.not.issued")
    assert caught.value.details["code"] == "INVALID_TOKEN"


def test_token_delay_holds_each_token_answer(tmp_path: Path) -> None:
    with LoopbackZoho(token_delay=0.3) as zoho:
        started = time.monotonic()
        initialize(zoho, tmp_path / "tokens.csv", grant_token=zoho.issue_grant_token())
        assert time.monotonic() - started >= 0.3


def test_delayed_token_calls_are_served_concurrently() -> None:
    with LoopbackZoho(token_delay=0.3) as zoho:
        refresh_token = zoho.issue_refresh_token()
        answers: list[dict[str, object]] = []

        def refresh() -> None:
            answers.append(
                requests.post(
                    zoho.accounts_url,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": refresh_token,
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                    },
                    timeout=10,
                ).json()
            )

        threads = [threading.Thread(target=refresh) for _ in range(8)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started

        assert 0.3 <= elapsed < 1.5  # one after another would take 2.4 s
        assert zoho.calls["refresh"] == 8
        assert zoho.max_concurrent_token_calls > 1
        assert len({answer["access_token"] for answer in answers}) == 8


CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
    from zohocrmsdk.src.com.zoho.api.authenticator.store.file_store import (
        FileStore,
    )
    from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer
    from zoho_sa_store.testing import loopback_environment

    url, refresh_token, store_path, ready, go = sys.argv[1:]
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)
    token = OAuthToken(
        client_id="client-id", client_secret="client-secret",
        refresh_token=refresh_token,
    )
    Initializer.initialize(
        environment=loopback_environment(url), token=token,
        store=FileStore(store_path),
    )
    print(json.dumps({"access_token": token.get_access_token()}))
    """
)


def test_sdk_in_child_processes_reaches_the_parents_server(tmp_path: Path) -> None:
    with LoopbackZoho(token_delay=0.3) as zoho:
        refresh_token = zoho.issue_refresh_token()
        go = tmp_path / "go"
        children = []
        for i in range(8):
            argv = [zoho.url, refresh_token, str(tmp_path / f"store{i}.csv")]
            argv += [str(tmp_path / f"ready{i}"), str(go)]
            children.append(
                subprocess.Popen(
                    [sys.executable, "-c", CHILD, *argv],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready*"))) < 8:
            assert time.monotonic() < deadline, "children did not start"
            time.sleep(0.01)
        go.touch()
        outputs = [child.communicate(timeout=60)[0] for child in children]

        assert [child.returncode for child in children] == [0] * 8
        tokens = {json.loads(output)["access_token"] for output in outputs}
        assert len(tokens) == 8
        assert all(zoho.is_access_token_valid(token) for token in tokens)
        calls = zoho.calls
        assert (calls["refresh"], calls["current_user"], calls["org"]) == (8, 8, 8)
        assert zoho.max_concurrent_token_calls > 1


def test_loopback_environment_points_every_sdk_url_at_the_base() -> None:
    environment = loopback_environment("http://127.0.0.1:8000/")

    assert environment.url == "http://127.0.0.1:8000"
    assert environment.accounts_url == "http://127.0.0.1:8000/oauth/v2/token"
    assert environment.file_upload_url == "http://127.0.0.1:8000"


def test_repr_shows_no_secret_or_token(loopback_zoho: LoopbackZoho) -> None:
    grant_token = loopback_zoho.issue_grant_token()
    refresh_token = loopback_zoho.issue_refresh_token()

    text = repr(loopback_zoho)
    assert loopback_zoho.url in text
    for secret in (CLIENT_SECRET, grant_token, refresh_token):
        assert secret not in text


def test_reset_counters_zeroes_every_counter(loopback_zoho: LoopbackZoho) -> None:
    loopback_zoho.revoke_refresh_token("1000.unknown.token")
    requests.post(loopback_zoho.revoke_url, data={"token": "1000.x.y"}, timeout=5)
    assert loopback_zoho.calls["revoke"] == 1

    loopback_zoho.reset_counters()

    assert loopback_zoho.calls == dict.fromkeys(COUNTER_NAMES, 0)
    assert loopback_zoho.max_concurrent_token_calls == 0


def test_stop_closes_the_port_and_start_again_serves_on_a_new_one() -> None:
    zoho = LoopbackZoho().start()
    first_url = zoho.url
    zoho.stop()
    zoho.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(first_url + "/crm/v8/org", timeout=5)

    zoho.start()
    try:
        assert requests.get(zoho.url + "/crm/v8/org", timeout=5).status_code == 401
    finally:
        zoho.stop()


@pytest.mark.parametrize(
    "loopback_zoho", [{"email": "param@example.com", "expires_in": 60}], indirect=True
)
def test_fixture_takes_settings_by_indirect_parametrization(
    loopback_zoho: LoopbackZoho,
) -> None:
    assert loopback_zoho.running
    assert loopback_zoho.email == "param@example.com"
    assert loopback_zoho.expires_in == 60
