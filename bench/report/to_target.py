"""Time to target, MLPerf Training's and AlgoPerf's headline: training seconds until validation
accuracy first reaches a target, per arm, over seeds.

The rule (docs/method.md, "Time to target"): a seed's time is its cumulative training seconds
(validation excluded) up to the end of the first epoch whose validation accuracy reaches the
target; a seed that never reaches it counts as not reached, never dropped. Per arm: how many seeds
reached it, the median with its order-statistic interval, and MLPerf's score (the mean after
dropping the fastest and the slowest seed, a not-reached seed being the slowest).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench import stats
from bench.report.seeds import SeedRun


@dataclass(frozen=True)
class TimeToTarget:
    target: float
    times: list[float]  # one per seed; stats.NOT_REACHED where the seed never reached it
    epochs: list[int | None]  # the epoch it was reached in, per seed

    @property
    def reached(self) -> int:
        return sum(math.isfinite(t) for t in self.times)

    @property
    def median(self) -> tuple[stats.Interval, float] | None:
        return stats.median_interval(self.times)

    @property
    def mlperf(self) -> float | None:
        return stats.drop_two_mean(self.times)


def seed_time(run: SeedRun, target: float) -> tuple[float, int | None]:
    """(training seconds to the target, the epoch) for one seed; (NOT_REACHED, None) if never."""
    seconds = stats.time_to_target(run.train_s, run.curves["val_accuracy"], target)
    if seconds is None:
        return stats.NOT_REACHED, None
    hits = [e for e, a in enumerate(run.curves["val_accuracy"]) if a is not None and a >= target]
    return seconds, hits[0] + 1


def time_to_target(runs: Sequence[SeedRun], target: float) -> TimeToTarget:
    pairs = [seed_time(r, target) for r in runs]
    return TimeToTarget(target, [t for t, _ in pairs], [e for _, e in pairs])


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return "not reached" if math.isinf(value) else f"{value:.1f}"


def median_cell(t: TimeToTarget) -> str:
    """'41.2 s [30.5, 62.0] (93.8%)', 'not reached', or '–' with one seed."""
    got = t.median
    if got is None:
        return seconds(t.times[0]) if t.times else "–"
    ci, coverage = got
    if math.isinf(ci.point):
        return "not reached"
    return f"{ci.point:.1f} [{seconds(ci.lo)}, {seconds(ci.hi)}] ({100 * coverage:.1f}%)"


def epoch_cell(t: TimeToTarget) -> str:
    got = sorted(e for e in t.epochs if e is not None)
    if not got:
        return "–"
    return str(got[0]) if got[0] == got[-1] else f"{got[0]}–{got[-1]}"


def row(label: str, runs: Sequence[SeedRun], target: float) -> dict[str, str]:
    t = time_to_target(runs, target)
    return {
        "arm": label,
        "target": f"{target:g}",
        "reached": f"{t.reached} of {len(t.times)} seeds",
        "median training s [interval] (coverage)": median_cell(t),
        "MLPerf score s (drop fastest and slowest)": seconds(t.mlperf),
        "seconds of the seeds that reached it": ", ".join(
            f"{x:.1f}" for x in sorted(x for x in t.times if math.isfinite(x))
        )
        or "–",
        "epoch reached": epoch_cell(t),
    }
