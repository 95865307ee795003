"""Several processes writing the same database at once."""

from __future__ import annotations

import multiprocessing

from tokens import lookup, user_token

from zoho_sa_store import SQLAlchemyTokenStore

PROCESSES = 6


def save_same_user(url: str, start, number: int, results) -> None:
    store = SQLAlchemyTokenStore(url)
    start.wait(timeout=30)
    try:
        token = user_token("same@zylker.com:1", access_token=f"access-{number}")
        store.save_token(token)
        results.put(("ok", token.get_id()))
    except Exception as err:  # reported to the parent, which asserts on it
        results.put(("error", repr(err)))
    finally:
        store.dispose()


def test_six_processes_saving_one_user_leave_exactly_one_row(database_url):
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=save_same_user, args=(database_url, start, n, results))
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    assert [kind for kind, _ in outcomes] == ["ok"] * PROCESSES, outcomes
    store = SQLAlchemyTokenStore(database_url)
    tokens = store.get_tokens()
    assert len(tokens) == 1
    # Every process was told the id of the one row.
    assert {row_id for _, row_id in outcomes} == {tokens[0].get_id()}
    assert store.find_token(lookup("same@zylker.com:1")) is not None
    store.dispose()
