"""The A/B gate's decision, pure: per-round figures from raw times, a ratio with a CI, verdicts.

Per side, round and gate variant the side process returns raw step times, from which
``round_figures`` derives two figures: the median ms of the timed steps (warm-up and the step after
each wait for a turn excluded), and the wall ms per step, every stall and epoch boundary included
but the waits for the other side's turns, as the median over windows of WALL_WINDOW steps.

Per metric, round i gives a paired ratio r_i = B_i / A_i (the two processes took turns, so a
machine that speeds up or slows down moves both). Then

    ratio   R = median_i r_i
    CI      [r_(k), r_(n+1−k)] of the sorted ratios, k the largest with binomial coverage >= LEVEL
            (``median_ci``; distribution-free, no resampling)
    spread  s = 1.4826 · MAD(r) / median(r)

and per variant and metric:

    REGRESSION   low > 1 + MARGIN  and  R − 1 > FLOOR, and, if s > NOISE_LIMIT, R − 1 > NOISE_K · s
    faster       the same, mirrored
    too noisy    a change by the CI and FLOOR that the spread guard holds back; or high > 1 + CEILING
    pass         otherwise

Rounds (``plan_rounds``): at least MIN_ROUNDS, DEFAULT_ROUNDS while they fit the budget, then one at
a time up to MAX_ROUNDS while a row is too noisy; rows decided by then keep their verdict
(``keep_decided``). Exit code: 1 if any row regressed; else 2 if any could not be judged; else 0.
Why each number is what it is, and the campaigns that chose and proved them: docs/gate.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import stats
from bench.gate.verdicts import (
    FASTER,
    NOISY,
    NOT_MEASURED,
    PASS,
    REGRESSION,
)

FLOOR = 0.05  # half the +10% the gate exists to catch
MARGIN = 0.03  # the CI must clear 1 by this: 10 gates between two builds of one code scattered
# -2.5…+2.8 % (3 rows; SD 1.3-1.7 %), no CI lower bound above -0.4 % (reports/gate-margin)
CEILING = 0.20  # a CI reaching this could hide the regression the gate is for: too noisy
NOISE_LIMIT = 0.10  # pairs scattering more than this are not hit alike by the machine's load
NOISE_K = 3.0
LEVEL = 0.90
# The CI at each round count, in ci_text's words (a test checks them against order_k):
# the fewest rounds whose min…max holds the median with >= LEVEL: the smallest to the largest of
# the 5 ratios, coverage 93.8%
MIN_ROUNDS = 5
# one stray round cannot decide: the 2nd smallest to the 2nd largest of the 8 ratios, coverage
# 93.0%
DEFAULT_ROUNDS = 8
# rounds added when a row is too noisy stop here: the 5th smallest to the 5th largest of the 16
# ratios, coverage 92.3%
MAX_ROUNDS = 16
BUDGET_S = 210.0  # seconds of rounds; with REF's environment (~30 s) the gate fits 5 minutes
METRICS = ("median_ms", "wall_ms")
# Steps per window of the wall figure (bench.run.gate_rounds.INTERLEAVE_EVERY steps per turn):
# long enough to hold a periodic cost of every 50 steps or more often in every window.
WALL_WINDOW = 50
METRIC_LABELS = {"median_ms": "median step", "wall_ms": "wall per step"}


class ABError(ValueError):
    """The A/B comparison cannot be made from these responses; the message says why."""


def window_walls(
    batch_end_s: Sequence[float],
    warmup: int,
    pauses: Sequence[Sequence[float]] = (),
    window: int = WALL_WINDOW,
) -> list[float]:
    """Wall ms per step of each window of `window` steps after the warm-up, waits for turns left out.

    Windows end at multiples of `window` steps (the first starts after the warm-up, the last ends
    at the last step). A window's wall time is the span of its batch ends less the waits for the
    other side's turns inside it (``pauses``: [steps so far, seconds]), so everything of this side's
    own (stalls, epoch boundaries) stays in. Without pauses and with a window at least as long as
    the run, this is the whole run's wall time per step.
    """
    steps = len(batch_end_s)
    bounds = [warmup, *range(window * (warmup // window + 1), steps, window), steps]
    walls = []
    for lo, hi in itertools.pairwise(bounds):
        waited = sum(float(s) for after, s in pauses if lo <= after < hi)
        walls.append(1000 * (batch_end_s[hi - 1] - batch_end_s[lo - 1] - waited) / (hi - lo))
    return walls


def round_figures(
    steps_ms: Sequence[Sequence[float]],
    batch_end_s: Sequence[float],
    warmup: int,
    pauses: Sequence[Sequence[float]] = (),
) -> tuple[float, float]:
    """(median ms, wall ms per step) of one run from its raw times; warm-up steps excluded.

    ``steps_ms``: per-epoch lists of step times (ms); ``batch_end_s``: seconds from fit start at
    every batch end; ``pauses``: [steps so far, seconds] of an interleaved run's waits for its turn.
    Median: of the timed steps, less the step after each pause (it holds the pause, and a cache the
    other process just used). Wall: the median over windows of WALL_WINDOW steps of each window's
    wall ms per step (``window_walls``); without pauses, the whole run's.
    Windows, because a one-off stall of up to a second (seen on the shared dev machine, on either
    side, with both sides the same code) made single rounds' whole-run B/A 1.8× and 2.6×, while a
    periodic cost that recurs at least once per window is in every window.
    """
    # the step after each pause (0-based index `after`) opens a block: bench.stats.blocks drops it
    timed = [ms for block in stats.blocks(steps_ms, warmup, pauses) for ms in block]
    steps = len(batch_end_s)
    if steps <= warmup + 1 or not timed or warmup < 1:
        raise ABError(f"{steps} steps: too few after a warm-up of {warmup}")
    window = WALL_WINDOW if pauses else steps
    wall_ms = stats.median(window_walls(batch_end_s, warmup, pauses, window))
    if not all(math.isfinite(v) and v > 0 for v in (*timed, wall_ms)):
        raise ABError("non-positive or non-finite step times")
    return stats.median(timed), wall_ms


def figures(response: Mapping[str, Any], warmup: int) -> dict[str, dict[str, float]]:
    """{variant: {"median_ms": …, "wall_ms": …}} from one side process's response (contract 1)."""
    if not response.get("ok"):
        raise ABError(f"side process failed: {response.get('error', 'no error given')}")
    out = {}
    for run in response["runs"]:
        median_ms, wall_ms = round_figures(
            run["step_ms"], run["batch_end_s"], warmup, run.get("pauses", ())
        )
        out[run["name"]] = {"median_ms": median_ms, "wall_ms": wall_ms}
    return out


def coverage(n: int, k: int) -> float:
    """P(x_(k) ≤ true median ≤ x_(n+1−k)) for n independent ratios: 1 − 2 · P(Binomial(n, ½) < k)."""
    return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n


def order_k(n: int, level: float = LEVEL) -> int:
    """The k of the CI [x_(k), x_(n+1−k)] for n rounds: the largest with coverage ≥ `level` (0: none)."""
    return max((k for k in range(1, n // 2 + 1) if coverage(n, k) >= level), default=0)


def check_rounds(rounds: int) -> None:
    """ABError unless `rounds` allow the CI; called before any process starts."""
    if rounds < MIN_ROUNDS:
        raise ABError(
            f"--rounds {rounds}: the A/B gate needs at least {MIN_ROUNDS} for a {LEVEL:.0%} CI of "
            "the median"
        )


def ci_text(n: int, level: float = LEVEL) -> str:
    """Which sorted ratios bound the CI with n rounds, in words, e.g. for 8: '2nd smallest … '."""
    k = order_k(n, level)
    if k == 0:
        return f"none with {n} rounds"
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    nth = "" if k == 1 else f"{k}{suffix} "
    share = f"{coverage(n, k):.1%}"
    return f"the {nth}smallest to the {nth}largest of the {n} ratios, coverage {share}"


def median_ci(
    a: Sequence[float], b: Sequence[float], *, level: float = LEVEL
) -> tuple[float, float, float]:
    """(R, low, high): R = median of the paired ratios b_i/a_i and its distribution-free CI.

    The CI is [x_(k), x_(n+1−k)] of the sorted ratios, k = ``order_k`` (6 rounds: k = 1, the
    smallest and largest ratio, 96.9 %; 8 rounds: k = 2, 93.0 %; 12 rounds: k = 3, 96.1 %). It
    assumes only that rounds are independent pairs, so it does not shrink with a small sample the
    way a percentile bootstrap of a median does.
    """
    if len(a) != len(b) or len(a) < MIN_ROUNDS:
        raise ABError(f"{len(a)} and {len(b)} rounds: need equally many, at least {MIN_ROUNDS}")
    if not 0 < level < 1:
        raise ABError(f"level {level}: need 0 < level < 1")
    ratios = sorted(y / x for x, y in zip(a, b, strict=True))
    n = len(ratios)
    k = order_k(n, level)
    if k == 0:
        raise ABError(f"{n} rounds: too few for a {level:.0%} CI of the median (need {MIN_ROUNDS})")
    return stats.median(ratios), ratios[k - 1], ratios[n - k]


def verdict(
    ratio: float,
    low: float,
    high: float,
    spread: float = 0.0,
    *,
    floor: float = FLOOR,
    margin: float = MARGIN,
    ceiling: float = CEILING,
    noise_limit: float = NOISE_LIMIT,
) -> str:
    """The rule of the module docstring for one (variant, metric); `spread` is s of the ratios."""
    beyond_noise = spread <= noise_limit or abs(ratio - 1) > NOISE_K * spread
    if low > 1 + margin and ratio - 1 > floor:
        return REGRESSION if beyond_noise else NOISY
    if high < 1 - margin and 1 - ratio > floor:
        return FASTER if beyond_noise else NOISY
    if high > 1 + ceiling:
        return NOISY
    return PASS


def ratio_spread(a: Sequence[float], b: Sequence[float]) -> float:
    """1.4826 · MAD / median of the paired ratios b_i/a_i."""
    return stats.relative_spread([y / x for x, y in zip(a, b, strict=True)])


@dataclass(frozen=True)
class ABRow:
    """One variant and metric: both sides' medians over rounds, the ratio B/A with its CI, verdict."""

    variant: str
    metric: str
    verdict: str
    a_ms: float | None = None
    b_ms: float | None = None
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    spread: float | None = None
    rounds: int = 0

    @property
    def change(self) -> float | None:
        """R − 1: +0.10 is 10 % slower on side B."""
        return None if self.ratio is None else self.ratio - 1


def compare_rounds(
    rounds: Sequence[Mapping[str, Mapping[str, Mapping[str, float]]]],
    variants: Sequence[str],
    *,
    floor: float = FLOOR,
    ceiling: float = CEILING,
    level: float = LEVEL,
) -> list[ABRow]:
    """Rows for every variant × metric from per-round figures ``[{"A": fig, "B": fig}, …]``.

    A variant missing from any round on either side is 'not measured' (exit 2).
    """
    rows = []
    for name in variants:
        for metric in METRICS:
            try:
                a = [r["A"][name][metric] for r in rounds]
                b = [r["B"][name][metric] for r in rounds]
            except KeyError:
                rows.append(ABRow(name, metric, NOT_MEASURED, rounds=len(rounds)))
                continue
            if len(rounds) < MIN_ROUNDS:
                rows.append(ABRow(name, metric, NOT_MEASURED, rounds=len(rounds)))
                continue
            ratio, low, high = median_ci(a, b, level=level)
            spread = ratio_spread(a, b)
            rows.append(
                ABRow(
                    name,
                    metric,
                    verdict(ratio, low, high, spread, floor=floor, ceiling=ceiling),
                    a_ms=stats.median(a),
                    b_ms=stats.median(b),
                    ratio=ratio,
                    low=low,
                    high=high,
                    spread=spread,
                    rounds=len(rounds),
                )
            )
    return rows


def more_rounds_wanted(rows: Sequence[ABRow]) -> bool:
    """Whether more rounds could turn 'cannot judge' into a verdict: no regression, a row too noisy.

    Rounds are added only while the gate would otherwise give up (exit 2), and only the noisy rows
    are judged again on them (``keep_decided``). Each extra round is another look at those rows,
    so a noisy row can reach a verdict on a favourable streak: the order-statistic CI over 9-16
    rounds and the 5% floor make a false REGRESSION from that rare, but the proof campaigns ran
    fixed rounds and did not measure it.
    """
    verdicts = {row.verdict for row in rows}
    return REGRESSION not in verdicts and NOISY in verdicts


def keep_decided(
    rows: Sequence[ABRow], decided: Mapping[tuple[str, str], ABRow], done: int
) -> tuple[list[ABRow], dict[tuple[str, str], ABRow]]:
    """Rows with every verdict reached at DEFAULT_ROUNDS or later kept as it was first reached.

    Extra rounds exist for the rows still too noisy; a row already decided (pass, faster,
    REGRESSION) is not judged again on more rounds, so other rows' extra rounds give it no
    second look that could turn a pass into a false alarm. Returns (rows, decided so far).
    """
    kept = dict(decided)
    out = []
    for row in rows:
        key = (row.variant, row.metric)
        if key in kept:
            out.append(kept[key])
            continue
        if done >= DEFAULT_ROUNDS and row.verdict != NOISY:
            kept[key] = row
        out.append(row)
    return out, kept


def plan_rounds(done: int, elapsed_s: float, rows: Sequence[ABRow], budget_s: float) -> int:
    """How many rounds to run next (0: stop), sizing the gate by time.

    Up to DEFAULT_ROUNDS while the rounds so far predict staying within `budget_s` (never fewer
    than MIN_ROUNDS); past it, one more at a time while ``more_rounds_wanted`` and within budget,
    up to MAX_ROUNDS.
    """
    if done < MIN_ROUNDS:
        return MIN_ROUNDS - done
    per_round = elapsed_s / done
    fits = int((budget_s - elapsed_s) // per_round) if per_round > 0 else MAX_ROUNDS
    if done < DEFAULT_ROUNDS:
        return max(0, min(DEFAULT_ROUNDS - done, fits))
    if done < MAX_ROUNDS and fits >= 1 and more_rounds_wanted(rows):
        return 1
    return 0
