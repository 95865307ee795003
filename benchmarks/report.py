"""The Markdown report of a run: results table, targets, and how calls look."""

from __future__ import annotations

from collections.abc import Iterable

from .results import Run, Scene

# The contenders the targets name, in the order the table shows them.
MAIN_ORDER = ["raw", "store", "filestore", "dbstore"]
FLOOR = "raw.find"
STORE_FIND = "store.find"
STORE_SAVE = "store.save"

# Per database: how close to the bare driver a find must be.
FLOOR_LIMITS = {"sqlite": 3.0, "postgresql": 1.5, "mysql": 1.5}
FLAT_LIMIT = 1.3

NOTES = [
    "- Within a database and size, every contender ran in every round, side by "
    "side, in rotating order. Times are medians over rounds; ratios are medians "
    "of the per-round ratios.",
    "- The machine is shared, so absolute times carry other people's load: only "
    "the ratios are claims.",
    "- Table sizes ran one after the other (the table is refilled in between), "
    "so a comparison across sizes is not side by side: the bare driver's own "
    "change between sizes shows how much of it is drift.",
    "- A find builds a new token carrying only the user name, as a new request "
    "does; every token is far from expiry, so no refresh logic runs. A save is a "
    "refresh: an update of an existing user, by the row id the SDK carries.",
    "- The bare driver is the store's own DBAPI driver on one open connection "
    "(autocommit), running `SELECT * FROM oauthtoken WHERE user_name = ?` and "
    "fetching the row.",
]
DBSTORE_MIN = 10.0


def us(value: float) -> str:
    """Format microseconds: three significant figures, thousands grouped."""
    if value < 10:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def times(value: float) -> str:
    """Format a ratio as a multiple."""
    if value >= 100:
        return f"{value:,.0f}×"
    if value >= 10:
        return f"{value:.1f}×"
    return f"{value:.2f}×"


def size(users: int) -> str:
    """Format a table size: 1k, 100k."""
    return f"{users // 1000}k" if users % 1000 == 0 else f"{users:,}"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join("---" for _ in header) + " |")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _family(key: str) -> str:
    return key.split(".", 1)[0]


def results_table(run: Run) -> list[str]:
    """Return the main table: per-call medians and ratios, per database and size."""
    header = [
        "Database",
        "Users",
        "Contender",
        "find µs/call",
        "save µs/call",
        "find ÷ bare driver",
        "÷ store (find; save)",
    ]
    rows = []
    for scene in run.scenes:
        families: dict[str, dict[str, str]] = {}
        for entry in scene.entries:
            if not entry.diagnostic:
                families.setdefault(_family(entry.key), {})[entry.operation] = entry.key
        for family in sorted(families, key=MAIN_ORDER.index):
            keys = families[family]
            label = next(e.label for e in scene.entries if e.key in keys.values())
            find, save = keys.get("find"), keys.get("save")
            vs_store = []
            for key, store_key in ((find, STORE_FIND), (save, STORE_SAVE)):
                vs_store.append(
                    times(scene.ratio(key, store_key))
                    if key and family != "store" and scene.has(store_key)
                    else "—"
                )
            rows.append(
                [
                    scene.database,
                    f"{scene.users:,}",
                    label,
                    us(scene.median(find)) if find else "—",
                    us(scene.median(save)) if save else "—",
                    times(scene.ratio(find, FLOOR)) if find else "—",
                    "; ".join(vs_store) if family != "store" else "1",
                ]
            )
    return _table(header, rows)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not run"}[met]


def _floor_target(run: Run) -> list[list[str]]:
    rows = []
    for database in run.databases():
        scenes = [s for s in run.scenes if s.database == database]
        limit = FLOOR_LIMITS[scenes[0].database_key]
        ratios = [(s.users, s.ratio(STORE_FIND, FLOOR)) for s in scenes]
        figure = ", ".join(f"{times(r)} at {size(n)}" for n, r in ratios)
        met = all(r <= limit for _, r in ratios)
        worst = max(r for _, r in ratios)
        if not met:
            figure += f" (limit {times(limit)}; {worst / limit:.1f} times over)"
        rows.append(
            [
                f"find within {times(limit)} of the bare driver, {database}",
                figure,
                _verdict(met),
            ]
        )
    return rows


def _flat_target(run: Run) -> list[list[str]]:
    sizes = run.sizes()
    rows = []
    if len(sizes) < 2:
        return rows
    small, large = sizes[0], sizes[-1]
    for database in run.databases():
        a, b = run.scene(database, small), run.scene(database, large)
        if a is None or b is None:
            continue
        store = b.median(STORE_FIND) / a.median(STORE_FIND)
        floor = b.median(FLOOR) / a.median(FLOOR)
        over_floor = (b.ratio(STORE_FIND, FLOOR), a.ratio(STORE_FIND, FLOOR))
        figure = (
            f"store {times(store)} ({us(a.median(STORE_FIND))} → "
            f"{us(b.median(STORE_FIND))} µs); bare driver {times(floor)}; "
            f"store ÷ bare driver {times(over_floor[1])} → {times(over_floor[0])}"
        )
        rows.append(
            [
                f"find flat with size, {size(large)} vs {size(small)} users, "
                f"{database}",
                figure,
                _verdict(store <= FLAT_LIMIT),
            ]
        )
    return rows


def _statement_targets(run: Run) -> list[list[str]]:
    rows = []
    for database in run.databases():
        traces = {t.call: t for t in run.traces.get(database, [])}
        find = traces.get("find_token")
        if find is not None:
            one = len(find.statements) == 1 and len(find.sent) == 1
            rows.append(
                [
                    f"find: one statement, one round trip, {database}",
                    f"{len(find.statements)} statement; sent: "
                    + " + ".join(_kind(s) for s in find.sent),
                    _verdict(one),
                ]
            )
        save = traces.get("save_token, refresh (by id)")
        if save is not None:
            extra = [s for s in save.sent[1:] if _kind(s) != "COMMIT"]
            one = len(save.statements) == 1 and not extra
            rows.append(
                [
                    f"save: one upsert plus its commit, {database}",
                    f"{len(save.statements)} statement; sent: "
                    + " + ".join(_kind(s) for s in save.sent),
                    _verdict(one),
                ]
            )
    return rows


def _kind(sent: str) -> str:
    """Name a sent statement by its first words: SELECT, INSERT, COMMIT."""
    word = sent.split(" ", 1)[0]
    return "upsert" if word == "INSERT" else word


def _dbstore_target(run: Run) -> list[list[str]]:
    scenes = [s for s in run.scenes if s.has("dbstore.find")]
    if not scenes:
        return [["≥ 10× faster per find than the SDK's DBStore", "", _verdict(None)]]
    ratios = [(s.users, s.ratio("dbstore.find", STORE_FIND)) for s in scenes]
    figure = ", ".join(
        f"DBStore (10 users) {times(r)} slower than the store at {size(n)}"
        for n, r in ratios
    )
    return [
        [
            f"≥ 10× faster per find than the SDK's DBStore, {scenes[0].database}",
            figure,
            _verdict(all(r >= DBSTORE_MIN for _, r in ratios)),
        ]
    ]


def _thread_target(run: Run) -> list[list[str]]:
    load = run.thread_load
    name = "16 threads, one store, mixed find/save: no errors, no duplicates"
    if load is None:
        return [[name, "", _verdict(None)]]
    errors = sum(load.errors.values())
    figure = (
        f"{load.threads} threads, {load.seconds:.0f} s on {load.database}: "
        f"{load.throughput:,.0f} calls/s, {errors} errors, "
        f"{load.duplicate_names} duplicate user names"
    )
    return [
        [
            name.replace("16", str(load.threads)),
            figure,
            _verdict(errors == 0 and load.duplicate_names == 0),
        ]
    ]


def targets_table(run: Run) -> list[str]:
    """Return the issue's targets, each with its measured figure and verdict."""
    rows = (
        _statement_targets(run)
        + _floor_target(run)
        + _flat_target(run)
        + _dbstore_target(run)
        + _thread_target(run)
    )
    return _table(["Target", "Measured", "Verdict"], rows)


# Diagnostic layers, cheapest first.
LAYERS = ["raw", "dbapi_checkout", "core_held", "core_checkout", "store"]


def diagnostics_table(run: Run) -> list[str]:
    """Return where a call's time goes, layer by layer, where diagnostics ran."""
    rows = []
    for scene in run.scenes:
        if not any(e.diagnostic for e in scene.entries):
            continue
        families: dict[str, dict[str, str]] = {}
        labels: dict[str, str] = {}
        for entry in scene.entries:
            family = _family(entry.key)
            if family in LAYERS:
                families.setdefault(family, {})[entry.operation] = entry.key
                labels.setdefault(family, entry.label)
        for family in sorted(families, key=LAYERS.index):
            find, save = families[family].get("find"), families[family].get("save")
            rows.append(
                [
                    scene.database,
                    f"{scene.users:,}",
                    labels[family],
                    us(scene.median(find)) if find else "—",
                    times(scene.ratio(find, FLOOR)) if find else "—",
                    us(scene.median(save)) if save else "—",
                    times(scene.ratio(save, STORE_SAVE)) if save else "—",
                ]
            )
    header = [
        "Database",
        "Users",
        "Layer",
        "find µs/call",
        "find ÷ bare driver",
        "save µs/call",
        "save ÷ store's save",
    ]
    return _table(header, rows)


def traces_table(run: Run) -> list[str]:
    """Return what each traced call executed and what reached the server."""
    rows = []
    for database, traces in run.traces.items():
        for trace in traces:
            pairs = zip(trace.statements, trace.cache, strict=True)
            statements = "<br>".join(f"`{s}` ({c})" for s, c in pairs)
            sent = "<br>".join(f"`{s}`" for s in trace.sent)
            rows.append([database, trace.call, statements, str(len(trace.sent)), sent])
    header = [
        "Database",
        "Call",
        "Statements executed (compiled cache)",
        "Round trips (SQLite: statements run)",
        "Sent by the driver",
    ]
    return _table(header, rows)


def thread_lines(run: Run) -> list[str]:
    """Return the thread load's results."""
    load = run.thread_load
    if load is None:
        return ["Not run."]
    errors = sum(load.errors.values())
    lines = [
        f"{load.threads} threads shared one `SQLAlchemyTokenStore` on {load.database} "
        f"for {load.seconds:.1f} s over {load.users} users "
        f"({load.save_share:.0%} saves, by user name; half the users were "
        f"created by racing first saves during the load).",
        "",
        *_table(
            [
                "Calls",
                "Throughput",
                "Finds (found)",
                "Saves",
                "Errors",
                "Duplicate user names",
                "Rows after",
                "find p50 / p99",
                "save p50 / p99",
                "New connections opened",
            ],
            [
                [
                    f"{load.calls:,}",
                    f"{load.throughput:,.0f} calls/s",
                    f"{load.finds:,} ({load.found:,})",
                    f"{load.saves:,}",
                    str(errors),
                    str(load.duplicate_names),
                    str(load.rows_after),
                    f"{load.percentile(load.find_ms, 0.5):.2f} / "
                    f"{load.percentile(load.find_ms, 0.99):.2f} ms",
                    f"{load.percentile(load.save_ms, 0.5):.2f} / "
                    f"{load.percentile(load.save_ms, 0.99):.2f} ms",
                    str(load.connections_opened),
                ]
            ],
        ),
    ]
    for name, count in load.errors.most_common():
        lines.append(f"- {count} × `{name}`: {load.error_examples.get(name, '')}")
    return lines


def machine_lines(run: Run) -> list[str]:
    """Return the machine and software the run used."""
    rows = [[what, value] for what, value in run.machine]
    rows.append(["Load average (1, 5, 15 min) before the run", run.load_before])
    rows.append(["Load average (1, 5, 15 min) after the run", run.load_after])
    return _table(["", ""], rows)


def render(run: Run) -> str:
    """Return the whole Markdown report."""
    lines = [
        "# zoho_sa_store benchmark results",
        "",
        f"Command: `{run.command}`",
        "",
        "Settings: " + ", ".join(f"{k} {v}" for k, v in run.settings.items()) + ".",
        "",
        *NOTES,
        "",
        "## Per-call time",
        "",
        *results_table(run),
        "",
        "## Targets",
        "",
        *targets_table(run),
        "",
        "## Where a call's time goes",
        "",
        *diagnostics_table(run),
        "",
        "## Statements and round trips",
        "",
        *traces_table(run),
        "",
        "## Threads",
        "",
        *thread_lines(run),
        "",
        "## Machine",
        "",
        *machine_lines(run),
    ]
    if run.skipped:
        lines += ["", "## Skipped", ""]
        lines += [f"- {name}: {reason}" for name, reason in run.skipped.items()]
    return "\n".join(lines) + "\n"


def scene_summary(scene: Scene) -> str:
    """Return a one-line progress summary of a scene."""
    parts = [f"{e.key} {us(scene.median(e.key))}" for e in scene.entries]
    return f"{scene.database} {size(scene.users)}: " + ", ".join(parts) + " µs"
