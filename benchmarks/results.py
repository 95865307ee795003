"""What a benchmark run measured, kept apart from how it is reported."""

from __future__ import annotations

from dataclasses import dataclass, field

from .threads import ThreadLoadResult
from .timing import median, paired_ratio
from .wire import Trace


@dataclass(frozen=True)
class Entry:
    """A contender as reported: its key, label, operation, and role."""

    key: str
    label: str
    operation: str
    diagnostic: bool


@dataclass
class Scene:
    """The contenders timed together on one database at one table size."""

    database: str  # its label
    database_key: str
    users: int
    entries: list[Entry]
    # Microseconds per call, one value per round, per contender key.
    samples: dict[str, list[float]]
    rows_after: int = 0

    def has(self, key: str) -> bool:
        """Tell whether a contender was timed here."""
        return key in self.samples

    def median(self, key: str) -> float:
        """Return a contender's median microseconds per call."""
        return median(self.samples[key])

    def ratio(self, numerator: str, denominator: str) -> float:
        """Return the median of per-round ratios of two contenders here."""
        return paired_ratio(self.samples[numerator], self.samples[denominator])


@dataclass
class Run:
    """Everything one run measured."""

    command: str
    settings: dict[str, str]
    machine: list[tuple[str, str]] = field(default_factory=list)
    scenes: list[Scene] = field(default_factory=list)
    # Per database label (and variant), the store's traced calls.
    traces: dict[str, list[Trace]] = field(default_factory=dict)
    thread_load: ThreadLoadResult | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    load_before: str = ""
    load_after: str = ""

    def scene(self, database: str, users: int) -> Scene | None:
        """Return the scene of a database and size, if it ran."""
        for scene in self.scenes:
            if scene.database == database and scene.users == users:
                return scene
        return None

    def databases(self) -> list[str]:
        """Return the database labels that ran, in order."""
        return list(dict.fromkeys(scene.database for scene in self.scenes))

    def sizes(self) -> list[int]:
        """Return the table sizes that ran, smallest first."""
        return sorted({scene.users for scene in self.scenes})
