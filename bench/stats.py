"""Pure statistics: small functions over lists of floats, and every statistic of a record.

The only place figures are derived from raw measurements (no numpy needed by callers).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), q in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q={q} outside [0, 100]")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """Median; raises on an empty list."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation (sample stdev / mean); None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else None


def iqr(values: Sequence[float]) -> float:
    """Interquartile range (p75 - p25)."""
    return percentile(values, 75) - percentile(values, 25)


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (unscaled)."""
    m = median(values)
    return median([abs(v - m) for v in values])


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """median, p10, p90, min, max, mean, cv and n of a non-empty sample."""
    return {
        "n": len(values),
        "median": median(values),
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "cv": cv(values),
    }


MAD_TO_SIGMA = 1.4826  # MAD → standard deviation for normally distributed data
MEDIAN_SE = 1.2533  # √(π/2): std. error of a median over that of a mean


def relative_spread(values: Sequence[float]) -> float:
    """1.4826 · MAD / median: a robust relative standard deviation of one sample."""
    return MAD_TO_SIGMA * mad(values) / median(values)


def median_error(values: Sequence[float]) -> float:
    """Relative standard error of the median of `values`: 1.2533 · spread / √n."""
    return MEDIAN_SE * relative_spread(values) / math.sqrt(len(values))


LONG_STEP_FACTOR = 10  # a step this many times the median is a pause, not a training step


def time_to_target(
    train_s: Sequence[float], val_accuracy: Sequence[float | None], target: float
) -> float | None:
    """Cumulative training time (validation excluded) until val accuracy first reaches target."""
    elapsed = 0.0
    for seconds, acc in zip(train_s, val_accuracy, strict=True):
        elapsed += seconds
        if acc is not None and acc >= target:
            return elapsed
    return None


def timed_steps(
    step_ms_raw: Sequence[Sequence[float]], warmup_steps: int, steps_per_execution: int = 1
) -> tuple[list[float], list[float]]:
    """(every step's ms, the steps after the warm-up) from per-epoch callback intervals.

    An interval covers ``steps_per_execution`` steps and is spread evenly over them. At least the
    first (tracing) call is always left out; with nothing after the warm-up, the last step is kept.
    """
    spe = steps_per_execution
    step_ms = [s / spe for epoch in step_ms_raw for s in epoch]
    warm = max(1, math.ceil(warmup_steps / spe))
    return step_ms, step_ms[warm:] if len(step_ms) > warm else step_ms[-1:]


def repeat_stats(record: Mapping[str, Any]) -> dict[str, Any]:
    """Every statistic of one successful (variant, repeat) record, derived from its raw fields.

    Step times: each callback interval spread over ``steps_per_execution`` steps; the first
    ``warmup_steps`` steps (at least the first, tracing call) are left out of the summary. The
    wall cross-check is all training wall time but the trace call, over all steps but that one.
    """
    variant, timing = record["variant"], record["timing"]
    spe = variant.get("steps_per_execution", 1)
    warmup = record["settings"]["warmup_steps"]
    step_ms, timed = timed_steps(timing["step_ms_raw"], warmup, spe)
    summary = summarize(timed)
    median_s = summary["median"] / 1000
    first_ms = step_ms[0]
    total_steps = timing["steps_per_epoch"] * variant["epochs"]
    train_ms = 1000 * sum(timing["train_s_per_epoch"])
    if total_steps > spe:
        wall_step_ms = (train_ms - first_ms * spe) / (total_steps - spe)
    else:  # one execution (e.g. a batch as large as a small slice): nothing but the trace to time
        wall_step_ms = train_ms / total_steps
    pauses = [s for s in step_ms[1:] if s > LONG_STEP_FACTOR * summary["median"]]
    target = record["settings"]["target_accuracy"]
    return {
        "warmup_steps_excluded": max(1, math.ceil(warmup / spe)) * spe,
        "steps_timed": len(timed) * spe,
        "first_step_ms": first_ms,
        "step_ms": summary,
        "wall_step_ms": wall_step_ms,
        "samples_per_s": variant["batch_size"] / median_s,
        "wall_samples_per_s": variant["batch_size"] / (wall_step_ms / 1000),
        "long_steps": len(pauses),
        "long_steps_s": sum(pauses) / 1000,
        "target_accuracy": target,
        "time_to_target_s": time_to_target(
            timing["train_s_per_epoch"], record["accuracy"]["val_accuracy"], target
        ),
        "achieved_flops_per_s": record["model"]["flops_per_step"] / median_s,
    }
