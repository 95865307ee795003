"""The PNG chart: per database, per-call time of each contender, log scale."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402

from .report import size  # noqa: E402
from .results import Run  # noqa: E402

# One colour per contender family, the same in every panel.
COLOURS = {
    "raw": "#9e9e9e",
    "store": "#1f77b4",
    "filestore": "#ff7f0e",
    "dbstore": "#d62728",
}


def write_chart(run: Run, path: str) -> None:
    """Draw one grouped bar chart per database and save them in one PNG."""
    databases = run.databases()
    figure, axes = plt.subplots(
        1, len(databases), figsize=(6.2 * len(databases), 5.2), squeeze=False
    )
    for axis, database in zip(axes[0], databases, strict=True):
        scenes = [s for s in run.scenes if s.database == database]
        groups = [
            (operation, scene)
            for operation in ("find", "save")
            for scene in scenes
            if any(e.operation == operation and not e.diagnostic for e in scene.entries)
        ]
        families = [
            family
            for family in COLOURS
            if any(
                e.key.startswith(family + ".") and not e.diagnostic
                for s in scenes
                for e in s.entries
            )
        ]
        width = 0.8 / len(families)
        # Per group, the families timed there; their bars are centred on it.
        present = [
            [f for f in families if scene.has(f"{f}.{operation}")]
            for operation, scene in groups
        ]
        for family in families:
            xs, heights, label = [], [], None
            for g, (operation, scene) in enumerate(groups):
                if family not in present[g]:
                    continue
                slot = present[g].index(family) - (len(present[g]) - 1) / 2
                key = f"{family}.{operation}"
                xs.append(g + slot * width)
                heights.append(scene.median(key))
                label = next(e.label for e in scene.entries if e.key == key)
            if not xs:
                continue
            bars = axis.bar(xs, heights, width, label=label, color=COLOURS[family])
            axis.bar_label(
                bars,
                labels=[_short(h) for h in heights],
                fontsize=7,
                padding=2,
                rotation=90,
            )
        axis.set_xticks(range(len(groups)))
        axis.set_xticklabels(
            [f"{op}_token\n{size(scene.users)} users" for op, scene in groups]
        )
        axis.set_yscale("log")
        axis.set_ylabel("median µs per call (log scale)")
        axis.set_title(database)
        axis.grid(axis="y", which="major", alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
        # Bars on a log scale start at the axis' bottom: put it well below the
        # shortest bar so that bar stays visible, and leave room for labels.
        shortest = min(s.median(e.key) for s in scenes for e in s.entries)
        axis.set_ylim(shortest / 4, axis.get_ylim()[1] * 8)
    figure.suptitle(
        "Token store per-call time, contenders side by side in one run "
        "(shared machine: compare ratios, not absolute times)",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f} s"
    if value >= 1000:
        return f"{value / 1000:.1f} ms"
    return f"{value:.0f} µs" if value >= 10 else f"{value:.1f} µs"
