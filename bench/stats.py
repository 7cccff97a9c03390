"""Small pure statistics over lists of floats (no numpy needed by callers)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


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


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
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
