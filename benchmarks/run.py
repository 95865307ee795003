"""Run the benchmarks: ``python -m benchmarks.run`` from the repository root.

For each database (a SQLite file, PostgreSQL, MariaDB) and each table size,
the store, the bare driver and the SDK's own stores are timed side by side;
then the store's calls are traced, and 16 threads share one store on
PostgreSQL. Writes ``results.md``, ``chart.png`` and ``samples.json`` to
``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence

import sqlalchemy as sa

from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.model import oauthtoken

from . import contenders as c
from .chart import write_chart
from .data import Users, lookup, make_users
from .databases import (
    Database,
    fill_table,
    raw_connection,
    server_databases,
    server_version,
    sqlite_database,
    unreachable_reason,
)
from .machine import describe, load_average
from .report import render, scene_summary
from .results import Entry, Run, Scene
from .threads import run_thread_load
from .timing import measure
from .wire import trace_store

DRIVERS = {"sqlite": "sqlite3", "postgresql": "psycopg", "mysql": "PyMySQL"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Time the token store against the bare driver and the "
        "SDK's FileStore and DBStore, side by side.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1k and 10k users, 3 rounds, 3 s of threads",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        help="table sizes, comma separated (default 1000,100000)",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds per database and size (default 21)"
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        help="about how long each contender runs per round (default 0.1)",
    )
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql,mysql",
        help="which databases, comma separated (default all three)",
    )
    parser.add_argument(
        "--thread-seconds",
        type=float,
        help="length of the 16-thread load on PostgreSQL; 0 skips it (default 30)",
    )
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    quick = args.quick
    if args.sizes is None:
        args.sizes = [1000, 10_000] if quick else [1000, 100_000]
    if args.rounds is None:
        args.rounds = 3 if quick else 21
    if args.batch_seconds is None:
        args.batch_seconds = 0.02 if quick else 0.1
    if args.thread_seconds is None:
        args.thread_seconds = 3.0 if quick else 30.0
    args.sizes = sorted(set(args.sizes))
    return args


def scene_contenders(
    database: Database, users: Users, directory: str, *, diagnostics: bool
) -> list[c.Contender]:
    """Return the contenders for one database and table size, set up and ready."""
    store = SQLAlchemyTokenStore(database.url)
    raw = raw_connection(database)
    driver = DRIVERS[database.key]
    found = [
        c.raw_find(raw, users, driver),
        c.store_find(store, users),
    ]
    saves = [c.store_save(store, users, close=store.dispose)]
    if database.key == "sqlite":
        sdk_file = c.file_store(directory, users)
        found.append(c.filestore_find(sdk_file, users))
        saves.append(c.filestore_save(sdk_file, users))
    if database.key == "mysql":
        found.append(c.dbstore_find(c.db_store(database, users), users))
    if diagnostics:
        found += [
            c.dbapi_checkout_find(store.engine, raw, users),
            c.core_held_find(store.engine, users),
            c.core_checkout_find(store.engine, users),
        ]
    # A find that finds nothing would time the wrong thing: check each once.
    for contender in found:
        c.check_found(contender.call(0))
    return [*found, *saves]


def run_scene(
    database: Database,
    users: Users,
    directory: str,
    args: argparse.Namespace,
    *,
    diagnostics: bool,
) -> Scene:
    """Fill the table with ``users`` and time every contender side by side."""
    fill_table(database, users)
    prepared = scene_contenders(database, users, directory, diagnostics=diagnostics)
    timed = prepared
    try:
        samples = measure(
            timed,
            len(users),
            rounds=args.rounds,
            batch_seconds=args.batch_seconds,
            seed=args.seed + len(users),
        )
    finally:
        for contender in prepared:
            if contender.close is not None:
                contender.close()
    entries = [Entry(p.key, p.label, p.operation, p.diagnostic) for p in timed]
    scene = Scene(database.label, database.key, len(users), entries, samples)
    scene.rows_after = _row_count(database)
    if scene.rows_after != len(users):
        raise AssertionError(
            f"{database.label} holds {scene.rows_after} rows after timing "
            f"{len(users)} users: a save inserted instead of updating"
        )
    return scene


def _row_count(database: Database) -> int:
    engine = sa.create_engine(database.url)
    try:
        with engine.connect() as connection:
            count = sa.select(sa.func.count()).select_from(oauthtoken)
            return connection.execute(count).scalar_one()
    finally:
        engine.dispose()


def trace_database(database: Database, users: Users, run: Run) -> None:
    """Record what the store sends per call on ``database``."""
    store = SQLAlchemyTokenStore(database.url)
    try:
        store.find_token(lookup(users.names[0]))
        run.traces[database.label] = trace_store(store, database.key, users)
    finally:
        store.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and write the report and chart."""
    args = parse_args(argv)
    command = "python -m benchmarks.run " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    run = Run(
        command=command.strip(),
        settings={
            "sizes": ", ".join(f"{n:,}" for n in args.sizes),
            "rounds": str(args.rounds),
            "batch": f"~{args.batch_seconds:g} s per contender per round",
            "thread load": (
                f"{args.threads} threads for {args.thread_seconds:g} s"
                if args.thread_seconds > 0
                else "skipped"
            ),
        },
        load_before=load_average(),
    )
    wanted = args.databases.split(",")
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zoho-bench-") as directory:
        candidates = [sqlite_database(os.path.join(directory, "tokens.db"))]
        candidates += server_databases()
        databases = []
        for database in candidates:
            if database.key not in wanted:
                continue
            reason = unreachable_reason(database)
            if reason is None:
                databases.append(database)
            else:
                run.skipped[database.label] = reason
                print(f"skipping {database.label}: {reason}", file=sys.stderr)
        for database in databases:
            for number, count in enumerate(args.sizes):
                target = database
                if database.key == "sqlite":
                    # A new file per size, so each size starts from a fresh file.
                    path = os.path.join(directory, f"tokens_{count}.db")
                    target = sqlite_database(path)
                users = make_users(count, seed=args.seed)
                began = time.perf_counter()
                scene = run_scene(
                    target, users, directory, args, diagnostics=number == 0
                )
                run.scenes.append(scene)
                took = time.perf_counter() - began
                print(f"[{took:5.0f} s] {scene_summary(scene)}", file=sys.stderr)
                if number == 0:
                    trace_database(target, users, run)
        postgres = [d for d in databases if d.key == "postgresql"]
        if postgres and args.thread_seconds > 0:
            print(
                f"thread load: {args.threads} threads, {args.thread_seconds:g} s",
                file=sys.stderr,
            )
            run.thread_load = run_thread_load(
                postgres[0], threads=args.threads, seconds=args.thread_seconds
            )
        elif args.thread_seconds > 0:
            run.skipped["Thread load"] = "PostgreSQL is not available"
    run.load_after = load_average()
    run.machine = describe([server_version(d) for d in databases])
    report = render(run)
    with open(os.path.join(args.out, "results.md"), "w") as out:
        out.write(report)
    write_chart(run, os.path.join(args.out, "chart.png"))
    with open(os.path.join(args.out, "samples.json"), "w") as out:
        # Every round's figures, so the medians can be checked or re-derived;
        # the thread load's per-call latencies are too many to keep.
        kept = dataclasses.asdict(run)
        if kept["thread_load"] is not None:
            del kept["thread_load"]["find_ms"], kept["thread_load"]["save_ms"]
        json.dump(kept, out, indent=1, default=str)
    print(report)
    print(
        f"wrote results.md, chart.png and samples.json to {args.out}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
