"""Interleaved timing: every contender runs in every round, side by side.

The machine is shared, so absolute times drift with other people's load.
Each round therefore times every contender once, in a rotating order, and
only medians over rounds, and ratios taken within a round, are reported.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Sequence

from .contenders import Contender


def _time_batch(contender: Contender, users: Sequence[int]) -> float:
    """Return the mean microseconds per call over ``users``."""
    call = contender.call
    # Collect garbage left by the previous contender outside the clock, so
    # that no one pays for another's allocations.
    gc.collect()
    start = time.perf_counter_ns()
    for i in users:
        call(i)
    elapsed = time.perf_counter_ns() - start
    return elapsed / len(users) / 1000


def calibrate(contender: Contender, user_count: int, seconds: float) -> int:
    """Warm a contender up and return how many calls fill about ``seconds``."""
    population = min(user_count, contender.users or user_count)
    rng = random.Random(0)
    calls = 0
    start = time.perf_counter()
    # Warm-up: caches, compiled statements, prepared statements, pools.
    while calls < 2 or time.perf_counter() - start < seconds:
        contender.call(rng.randrange(population))
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    return max(1, round(seconds / per_call))


def measure(
    contenders: Sequence[Contender],
    user_count: int,
    *,
    rounds: int,
    batch_seconds: float,
    seed: int,
) -> dict[str, list[float]]:
    """Return, per contender key, the microseconds per call of each round."""
    batches = {c.key: calibrate(c, user_count, batch_seconds) for c in contenders}
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {c.key: [] for c in contenders}
    order = list(contenders)
    for round_number in range(rounds):
        # Rotate who goes first, so no contender always follows the same one.
        shift = round_number % len(order)
        for contender in order[shift:] + order[:shift]:
            population = min(user_count, contender.users or user_count)
            users = [rng.randrange(population) for _ in range(batches[contender.key])]
            samples[contender.key].append(_time_batch(contender, users))
    return samples


def median(values: Sequence[float]) -> float:
    """Return the median."""
    return statistics.median(values)


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Return the median over rounds of one contender's time over another's."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))
