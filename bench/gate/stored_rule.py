"""Step-time regression gate: thresholds and verdicts, a pure function of two measurements.

The measured statistic (``bench.measure.stored_rounds``): per round, r = harness step ms / calibration step ms
(each run's fastest timed step), measured back to back in one process; per variant, R = median of
the rounds' r. The calibration runs the same arithmetic without Keras, so a machine that is
uniformly slower moves A and B alike and leaves R alone, while a slower harness step raises R.

Decision, per variant, with n rounds:

    spread s = 1.4826 · MAD(r) / median(r)          robust relative std. dev. of one round
    error  e = 1.2533 · s / √n                      std. error of the median (normal approx.)
    noise  σ = √(e_now² + e_baseline²)              of the change below
    change c = R_now / R_baseline − 1
    threshold t = max(FLOOR, K · σ)
    REGRESSION if c > t; faster if c < −t; too noisy if t > CEILING; else pass

A variant missing on either side, or measured another way (batch, data, epochs, warm-up, TF
threads), cannot be judged. Exit code: 1 if any variant regressed, else 2 if any cannot be judged.

The floor absorbs what one run's spread cannot see: a different process, day or CPU model.
The ceiling is where this run could no longer resolve the regressions the gate exists for, so it
says so (exit 2) instead of passing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import stats
from bench.gate.verdicts import (
    CHANGED,
    FASTER,
    NO_BASELINE,
    NOISY,
    NOT_MEASURED,
    PASS,
    REGRESSION,
)
from bench.plan.gate_variants import REQUIRED_LISTS, ROUND_LISTS

MIN_ROUNDS = 3  # the fewest a baseline or a measurement may hold: a median needs a middle
DEFAULT_ROUNDS = 9
FLOOR = 0.15
K = 3.0
CEILING = 0.25
UPDATE_HINT = (
    "make one with `mnist-bench regress --update-baseline --baseline PATH` on the machine it is "
    "for, from a clean commit, and commit it"
)


class GateError(ValueError):
    """The gate cannot judge: the message says what is wrong and how to fix it."""


def check_entry(entry: Any, where: str) -> None:
    """Raise GateError unless entry holds equally long per-round lists of positive numbers."""
    if not isinstance(entry, dict):
        raise GateError(f"{where}: expected an object, got {type(entry).__name__}")
    lengths = set()
    for key in ROUND_LISTS:
        values = entry.get(key)
        if values is None and key not in REQUIRED_LISTS:
            continue
        if not isinstance(values, list):
            raise GateError(f"{where}: '{key}' must be a list of numbers")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise GateError(f"{where}: '{key}' holds {v!r}, not a finite number")
            if v <= 0:
                raise GateError(f"{where}: '{key}' holds {v!r}, not a positive number")
        lengths.add(len(values))
    if len(lengths) != 1:
        raise GateError(f"{where}: the per-round lists differ in length")
    if len(entry["ratios"]) < MIN_ROUNDS:
        raise GateError(f"{where}: {len(entry['ratios'])} rounds, the gate needs {MIN_ROUNDS}")


# What a round measures; ratios compare only when these match (and the TF thread settings do).
SETUP_KEYS = ("batch_size", "precision", "train_images", "epochs", "timed_steps")


def threshold(
    current: Sequence[float], baseline: Sequence[float], *, floor: float = FLOOR, k: float = K
) -> float:
    """max(floor, k · √(e_now² + e_baseline²)): the relative change the gate calls a regression."""
    return max(floor, k * math.hypot(stats.median_error(current), stats.median_error(baseline)))


@dataclass(frozen=True)
class Row:
    """One variant's comparison; numbers are None where a side is missing."""

    variant: str
    verdict: str
    baseline_ratio: float | None = None
    current_ratio: float | None = None
    change: float | None = None
    threshold: float | None = None
    baseline_spread: float | None = None
    current_spread: float | None = None
    baseline_harness_ms: float | None = None
    current_harness_ms: float | None = None


def judge(
    name: str,
    current: Mapping[str, Any] | None,
    baseline: Mapping[str, Any] | None,
    *,
    floor: float = FLOOR,
    k: float = K,
    ceiling: float = CEILING,
) -> Row:
    """The verdict for one variant from its current and baseline entries (either may be None)."""
    if current is None:
        return Row(name, NOT_MEASURED)
    now = current["ratios"]
    now_fields = {
        "current_ratio": stats.median(now),
        "current_spread": stats.relative_spread(now),
        "current_harness_ms": stats.median(current["harness_ms"]),
    }
    if baseline is None:
        return Row(name, NO_BASELINE, **now_fields)
    if any(k in current and k in baseline and current[k] != baseline[k] for k in SETUP_KEYS):
        return Row(name, CHANGED, **now_fields)
    base = baseline["ratios"]
    change = now_fields["current_ratio"] / stats.median(base) - 1
    limit = threshold(now, base, floor=floor, k=k)
    if change > limit:
        verdict = REGRESSION  # even when noisy: the change is beyond what the noise explains
    elif change < -limit:
        verdict = FASTER
    elif limit > ceiling:
        verdict = NOISY
    else:
        verdict = PASS
    return Row(
        name,
        verdict,
        baseline_ratio=stats.median(base),
        change=change,
        threshold=limit,
        baseline_spread=stats.relative_spread(base),
        baseline_harness_ms=stats.median(baseline["harness_ms"]),
        **now_fields,
    )


def compare(
    baseline: Mapping[str, Any],
    measured: Mapping[str, Any],
    *,
    floor: float = FLOOR,
    k: float = K,
    ceiling: float = CEILING,
) -> list[Row]:
    """One Row per variant in either the baseline or the measurement, baseline order first."""
    if not 0 < floor <= ceiling:
        raise GateError(f"floor={floor}, ceiling={ceiling}: need 0 < floor <= ceiling")
    base, now = baseline["variants"], measured["variants"]
    for name, entry in now.items():
        check_entry(entry, f"measurement: variant {name!r}")
    names = list(base) + [n for n in now if n not in base]
    rows = [
        judge(name, now.get(name), base.get(name), floor=floor, k=k, ceiling=ceiling)
        for name in names
    ]
    threads = (baseline.get("settings") or {}).get("threads"), measured.get("threads")
    if None not in threads and threads[0] != threads[1]:
        rows = [
            dataclasses.replace(row, verdict=CHANGED) if row.baseline_ratio is not None else row
            for row in rows
        ]
    return rows
