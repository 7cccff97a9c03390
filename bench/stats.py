"""Pure statistics: small functions over lists of floats, and every statistic of a record.

The only place figures are derived from raw measurements (no numpy needed by callers).
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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


def relative_spread(values: Sequence[float]) -> float:
    """1.4826 · MAD / median: a robust relative standard deviation of one sample."""
    return MAD_TO_SIGMA * mad(values) / median(values)


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
    step_ms_raw: Sequence[Sequence[float]],
    warmup_steps: int,
    steps_per_execution: int = 1,
    pauses: Sequence[Sequence[float]] = (),
    short_last: bool = False,
) -> tuple[list[float], list[float]]:
    """(every step's ms, the steps after the warm-up) from per-epoch callback intervals.

    An interval covers ``steps_per_execution`` steps and is spread evenly over them. At least the
    first (tracing) call is always left out; with nothing after the warm-up, the last step is kept.
    An interleaved run's block-opening calls (the one after each of its ``pauses``, which ran on
    caches the other processes had just used) are left out too, and with `short_last` each
    epoch's last call (``short_last_call``).
    """
    spe = steps_per_execution
    step_ms = [s / spe for epoch in step_ms_raw for s in epoch]
    kept = blocks(step_ms_raw, warmup_steps, pauses, spe, short_last)
    timed = [ms for block in kept for ms in block]
    return step_ms, timed or step_ms[-1:]


def short_last_call(record: Mapping[str, Any]) -> bool:
    """Whether each epoch's last call trained fewer images than the others (a partial batch).

    60,000 images at batch 2048 end each epoch with a batch of 608, a far shorter step that is no
    step at batch 2048. An arm with many steps per block outvotes it; a short arm's last block may
    hold only it and one or two others, so it can set that block's median, and whether it does
    depends on where the pauses fall, which moves with the machine's speed between runs.
    """
    variant = record["variant"]
    images = record["accuracy"].get("train_images")
    if images is None:
        return False
    batch, spe = variant["batch_size"], variant.get("steps_per_execution", 1)
    return images % batch != 0 or record["timing"]["steps_per_epoch"] % spe != 0


def blocks(
    step_ms_raw: Sequence[Sequence[float]],
    warmup_steps: int,
    pauses: Sequence[Sequence[float]],
    steps_per_execution: int = 1,
    short_last: bool = False,
) -> list[list[float]]:
    """An interleaved run's timed steps (ms) block by block, in turn order.

    Block k holds the calls between the run's (k-1)-th and k-th pause. Left out, as everywhere:
    the warm-up calls and each block's opening call (a block can so be empty), and with
    `short_last` each epoch's last call (``short_last_call``).
    """
    spe = steps_per_execution
    step_ms = [s / spe for epoch in step_ms_raw for s in epoch]
    warm = max(1, math.ceil(warmup_steps / spe))
    ends = set(itertools.accumulate(len(epoch) for epoch in step_ms_raw)) if short_last else set()
    edges = [0, *(int(after) for after, _ in pauses), len(step_ms)]
    return [
        [
            ms
            for i, ms in enumerate(step_ms[lo:hi], lo)
            if i >= max(lo + (1 if k else 0), warm) and i + 1 not in ends
        ]
        for k, (lo, hi) in enumerate(itertools.pairwise(edges))
    ]


def block_medians(
    step_ms_raw: Sequence[Sequence[float]],
    warmup_steps: int,
    pauses: Sequence[Sequence[float]],
    steps_per_execution: int = 1,
    short_last: bool = False,
) -> list[float | None]:
    """The median step (ms) of each block (``blocks``); None for an empty block."""
    return [
        median(b) if b else None
        for b in blocks(step_ms_raw, warmup_steps, pauses, steps_per_execution, short_last)
    ]


def repeat_stats(record: Mapping[str, Any]) -> dict[str, Any]:
    """Every statistic of one successful (variant, repeat) record, derived from its raw fields.

    Step times: each callback interval spread over ``steps_per_execution`` steps; the first
    ``warmup_steps`` steps (at least the first, tracing call), an interleaved run's block-opening
    steps and each epoch's partial last batch (``short_last_call``) are left out of the summary.
    The wall cross-check is all training wall time but the trace call (and the waits for the
    machine, which the clock left out), over all steps but that one.
    """
    variant, timing = record["variant"], record["timing"]
    spe = variant.get("steps_per_execution", 1)
    warmup = record["settings"]["warmup_steps"]
    pauses, short = timing.get("pauses", ()), short_last_call(record)
    step_ms, timed = timed_steps(timing["step_ms_raw"], warmup, spe, pauses, short)
    summary = summarize(timed)
    median_s = summary["median"] / 1000
    first_ms = step_ms[0]
    total_steps = timing["steps_per_epoch"] * variant["epochs"]
    train_ms = 1000 * sum(timing["train_s_per_epoch"])
    if total_steps > spe:
        wall_step_ms = (train_ms - first_ms * spe) / (total_steps - spe)
    else:  # one execution (e.g. a batch as large as a small slice): nothing but the trace to time
        wall_step_ms = train_ms / total_steps
    long = [s for s in step_ms[1:] if s > LONG_STEP_FACTOR * summary["median"]]
    target = record["settings"]["target_accuracy"]
    return {
        "warmup_steps_excluded": max(1, math.ceil(warmup / spe)) * spe,
        "steps_timed": len(timed) * spe,
        "first_step_ms": first_ms,
        "step_ms": summary,
        "wall_step_ms": wall_step_ms,
        "samples_per_s": variant["batch_size"] / median_s,
        "wall_samples_per_s": variant["batch_size"] / (wall_step_ms / 1000),
        "long_steps": len(long),
        "long_steps_s": sum(long) / 1000,
        "target_accuracy": target,
        "time_to_target_s": time_to_target(
            timing["train_s_per_epoch"], record["accuracy"]["val_accuracy"], target
        ),
        "achieved_flops_per_s": record["model"]["flops_per_step"] / median_s,
    }


# --- Comparisons: intervals and verdicts ------------------------------------------------------
#
# Why each choice (docs/method.md, "Intervals"): the repeat (a fresh process) is the unit that
# varies, so unpaired intervals are a two-level bootstrap (repeats, then steps within each) of the
# geometric mean over repeats of each repeat's median step; with 3-7 repeats the percentiles are
# widened to a t-interval, Hesterberg's "expanded percentile" interval (T. Hesterberg, "What
# Teachers Should Know About the Bootstrap", Am. Stat. 69(4), 2015, sec. 5), n and df = n-1 of the
# arm with fewer repeats. tests/test_comparison_stats.py checks coverage, power and false alarms.

BOOTSTRAP_DRAWS = 1000
BOOTSTRAP_SEED = 20261125
# Student t quantiles t_{0.975, df} for df = 1..30 (beyond, the normal 1.96 is within 2%).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip
Z975 = 1.959964

NO_SPREAD = "no spread (1 repeat)"


def t975(df: float) -> float:
    """t_{0.975, df}; a fractional df (Welch's) rounds down, which widens the interval a little."""
    whole = max(1, math.floor(df))
    return _T975[whole - 1] if whole <= len(_T975) else Z975


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% confidence interval."""

    point: float
    lo: float
    hi: float

    def excludes(self, value: float) -> bool:
        return value < self.lo or value > self.hi

    def half_width(self, around: float) -> float:
        """The largest distance from `around` to either end (the interval's resolution)."""
        return max(abs(self.lo - around), abs(self.hi - around))


def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def expanded_alpha(n: int, df: int | None = None) -> float:
    """Two-sided tail mass of an expanded percentile interval: n units, t with df (n-1) freedom."""
    if n < 2:
        raise ValueError("an interval needs at least two repeats")
    df = n - 1 if df is None else df
    return 2 * _normal_cdf(-math.sqrt(n / (n - 1)) * t975(df))


def _interval(point: float, boot: np.ndarray, n: int, df: int | None = None) -> Interval:
    tail = 100 * expanded_alpha(n, df) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return Interval(point, min(float(lo), point), max(float(hi), point))


def seed_for(label: str) -> int:
    """A stable per-label seed, so every report renders the same intervals from the same records."""
    return BOOTSTRAP_SEED ^ zlib.crc32(label.encode())


def bootstrap_median_draws(
    steps: Sequence[float], draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Draws of the median of a with-replacement resample of `steps`, without resampling.

    Resampling n values with replacement is applying the empirical quantile function to n uniform
    variates, and the k-th smallest of n uniforms is Beta(k, n-k+1). So the resample's k-th order
    statistic (k = the lower median) is the sorted data at ceil(n * Beta(k, n-k+1)): exact, and
    O(draws) instead of O(draws * n).
    """
    x = np.sort(np.asarray(steps, dtype=np.float64))
    n = len(x)
    k = (n + 1) // 2
    idx = np.ceil(n * rng.beta(k, n - k + 1, size=draws)).astype(np.int64) - 1
    return x[np.clip(idx, 0, n - 1)]


def typical_step(repeat_medians: Sequence[float]) -> float:
    """Geometric mean of the repeats' median steps: the variant's typical step (see above)."""
    return math.exp(statistics.fmean(math.log(m) for m in repeat_medians))


def step_draws(
    repeats: Sequence[Sequence[float]], *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> np.ndarray:
    """Two-level bootstrap draws of typical_step: resample repeats, then steps within each."""
    rng = np.random.default_rng(seed)
    within = np.log(np.stack([bootstrap_median_draws(r, draws, rng) for r in repeats]))
    picks = rng.integers(0, len(repeats), size=(draws, len(repeats)))
    return np.exp(within[picks, np.arange(draws)[:, None]].mean(axis=1))


def repeat_draws(
    values: Sequence[float], statistic: str, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> np.ndarray:
    """Bootstrap draws of the mean or median of one value per repeat (e.g. accuracy, s/epoch)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(values, dtype=np.float64)
    sample = x[rng.integers(0, len(x), size=(draws, len(x)))]
    return sample.mean(axis=1) if statistic == "mean" else np.median(sample, axis=1)


@dataclass(frozen=True)
class SetTimes:
    """One arm's process in one paired set: its block medians (turn order) and s/epoch."""

    block_ms: tuple[float | None, ...]
    train_s_per_epoch: float


@dataclass(frozen=True)
class Arm:
    """One variant's successful repeats, as the comparison statistics need them."""

    label: str
    batch_size: int
    step_repeats: tuple[tuple[float, ...], ...]  # timed steps (ms) of each repeat
    train_s_per_epoch: tuple[float, ...]  # each repeat's median training seconds per epoch
    test_accuracy: tuple[float, ...]  # each repeat's (seed's) test accuracy
    sets: Mapping[str, SetTimes] = field(default_factory=dict)  # paired set id → its times

    @property
    def n(self) -> int:
        return len(self.step_repeats)

    @property
    def step_ms(self) -> float:
        """Geometric mean over repeats of each repeat's median step."""
        return typical_step([median(r) for r in self.step_repeats])

    @functools.cached_property
    def step_draws(self) -> np.ndarray:
        return step_draws(self.step_repeats, seed=seed_for(self.label))

    @functools.cached_property
    def train_draws(self) -> np.ndarray:
        return repeat_draws(self.train_s_per_epoch, "median", seed=seed_for("train " + self.label))

    @functools.cached_property
    def accuracy_draws(self) -> np.ndarray:
        return repeat_draws(self.test_accuracy, "mean", seed=seed_for("acc " + self.label))


def set_key(record: Mapping[str, Any]) -> str:
    """Which arms of a paired record shared machine moments: its run (two runs' sets share names,
    never a moment), its set and, for arms resumed after an interruption, its sitting."""
    pairing = record["pairing"]
    sitting = f"#{pairing['sitting']}" if pairing.get("sitting") else ""
    return f"{record['run']['id']}/{pairing['set']}{sitting}"


def arm(label: str, records: Sequence[Mapping[str, Any]]) -> Arm:
    """The Arm of a variant from its successful records (raw fields only)."""
    steps, train, acc = [], [], []
    sets: dict[str, SetTimes] = {}
    # Repeat order, not file order: the bootstrap draws repeat by repeat, so the same records
    # shuffled (a merge, a resumed run) must give the same interval.
    for r in sorted(records, key=lambda r: (r["run"]["id"], r["repeat"])):
        spe = r["variant"].get("steps_per_execution", 1)
        timing, warmup = r["timing"], r["settings"]["warmup_steps"]
        pauses, short = timing.get("pauses", ()), short_last_call(r)
        timed = timed_steps(timing["step_ms_raw"], warmup, spe, pauses, short)[1]
        steps.append(tuple(timed))
        train.append(median(timing["train_s_per_epoch"]))
        acc.append(float(r["accuracy"]["test_accuracy"]))
        if r.get("pairing"):
            blocks = block_medians(timing["step_ms_raw"], warmup, pauses, spe, short)
            sets[set_key(r)] = SetTimes(tuple(blocks), train[-1])
    batch = records[0]["variant"]["batch_size"]
    return Arm(label, batch, tuple(steps), tuple(train), tuple(acc), sets)


def step_interval(a: Arm) -> Interval | None:
    """The variant's median step with its 95% CI; None with a single repeat."""
    return _interval(a.step_ms, a.step_draws, a.n) if a.n > 1 else None


@dataclass(frozen=True)
class Comparison:
    """Arm b against arm a: ratios (b ÷ a) and the accuracy difference, each with its 95% CI.

    ``paired_sets``: how many paired sets the step and s/epoch ratios come from (0: from the two
    arms' separate repeats, by the two-level bootstrap).
    """

    step_ratio: Interval
    samples_ratio: Interval
    train_epoch_ratio: Interval
    accuracy_delta_pt: Interval
    paired_sets: int = 0


# --- Paired sets --------------------------------------------------------------------------------
#
# Block k of every arm ran in round k of its set (bench.run.pairs), so a set's ratio is the median
# of its block ratios, and the sets are the independent units: a t-interval on their log ratios,
# df = sets - 1 (Kalibera & Jones, "Rigorous benchmarking in reasonable time", 2013; docs/method.md,
# "Paired sets").


def logs_by_run(a: Arm, b: Arm) -> dict[str, tuple[list[float], list[float]]]:
    """Per run: (step, s/epoch) log ratios b ÷ a, one per paired set both arms ran in with a
    common block."""
    runs: dict[str, tuple[list[float], list[float]]] = {}
    for set_id in sorted(a.sets.keys() & b.sets.keys()):
        sa, sb = a.sets[set_id], b.sets[set_id]
        blocks = [
            math.log(yb / ya)
            for ya, yb in zip(sa.block_ms, sb.block_ms, strict=False)
            if ya is not None and yb is not None
        ]
        if blocks:
            steps, train = runs.setdefault(set_id.rsplit("/", 1)[0], ([], []))
            steps.append(median(blocks))
            train.append(math.log(sb.train_s_per_epoch / sa.train_s_per_epoch))
    return runs


def set_log_ratios(a: Arm, b: Arm) -> tuple[list[float], list[float]]:
    """(step, s/epoch) log ratios b ÷ a, one per paired set, every run's sets together."""
    return _together(logs_by_run(a, b))


def _together(runs: dict[str, tuple[list[float], list[float]]]) -> tuple[list[float], list[float]]:
    return [x for s, _ in runs.values() for x in s], [x for _, t in runs.values() for x in t]


def paired_intervals(a: Arm, b: Arm) -> tuple[Interval, Interval, int] | None:
    """(step, s/epoch) ratio intervals b ÷ a from paired sets, and how many sets; None with fewer
    than two sets.

    One run: a t-interval over its sets. Several runs (merged records): over the runs' mean log
    ratios, df = runs - 1. A run's sets share its hour of the machine, and a compute-bound arm's
    ratio to an overhead-bound one moves with the machine's throughput between runs more than
    between sets (docs/method.md, "Between runs"), so the runs are the top level that varies.
    """
    runs = logs_by_run(a, b)
    steps, train = _together(runs)
    if len(steps) < 2:
        return None
    if len(runs) == 1:
        return t_ratio_interval(steps), t_ratio_interval(train), len(steps)
    means = [(statistics.fmean(s), statistics.fmean(t)) for s, t in runs.values()]
    return (
        t_ratio_interval([s for s, _ in means]),
        t_ratio_interval([t for _, t in means]),
        len(steps),
    )


def t_ratio_interval(log_ratios: Sequence[float]) -> Interval:
    """The geometric mean of ratios with its 95% t-interval (df = n - 1), from their logs."""
    n = len(log_ratios)
    if n < 2:
        raise ValueError("an interval needs at least two paired sets")
    mean = statistics.fmean(log_ratios)
    half = t975(n - 1) * statistics.stdev(log_ratios) / math.sqrt(n)
    return Interval(math.exp(mean), math.exp(mean - half), math.exp(mean + half))


# --- Two runs' paired ratios --------------------------------------------------------------------
#
# (B's arm ÷ B's baseline) ÷ (A's arm ÷ A's baseline): a machine twice as fast leaves each run's
# ratio alone. The runs' sets are independent samples of different sizes and spreads, so the
# interval is Welch's t-interval on the difference of their mean log ratios (B. L. Welch,
# Biometrika 34, 1947; docs/reports.md, "mnist-bench compare").


def welch_ratio_interval(logs_a: Sequence[float], logs_b: Sequence[float]) -> Interval:
    """exp(mean(logs_b) − mean(logs_a)) with its 95% Welch t-interval: two independent samples."""
    na, nb = len(logs_a), len(logs_b)
    if na < 2 or nb < 2:
        raise ValueError(f"a ratio of two runs' ratios needs two sets in each, got {na} and {nb}")
    va, vb = statistics.variance(logs_a) / na, statistics.variance(logs_b) / nb
    diff = statistics.fmean(logs_b) - statistics.fmean(logs_a)
    if va + vb == 0:
        return Interval(math.exp(diff), math.exp(diff), math.exp(diff))
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half = t975(df) * math.sqrt(va + vb)
    return Interval(math.exp(diff), math.exp(diff - half), math.exp(diff + half))


def ratio_of_ratios(base_a: Arm, arm_a: Arm, base_b: Arm, arm_b: Arm) -> Interval | None:
    """(arm_b ÷ base_b) ÷ (arm_a ÷ base_a) from each run's own paired sets (Welch); None without
    two paired sets in each run."""
    logs_a, logs_b = set_log_ratios(base_a, arm_a)[0], set_log_ratios(base_b, arm_b)[0]
    if len(logs_a) < 2 or len(logs_b) < 2:
        return None
    return welch_ratio_interval(logs_a, logs_b)


def cross_run_floor(floor_a: float, floor_b: float) -> float:
    """The noise floor of a ratio of two runs' ratios: √(f_A² + f_B²).

    Each run's A/A distance from 1 is what re-measuring moved that run's ratios by; a ratio of
    ratios carries both runs' such moves, independent of each other, so they add in quadrature
    (more than either floor, less than their worst-case sum).
    """
    return math.hypot(floor_a, floor_b)


def compare_arms(a: Arm, b: Arm, *, paired: bool = True) -> Comparison | None:
    """b against a; None unless both have at least two repeats (no spread, no interval).

    Arms that ran side by side in at least two paired sets (and `paired`) by their paired ratios;
    others (separate processes, e.g. multi_worker arms or records from before paired sets) by the
    two-level bootstrap over their repeats. The accuracy difference is always over repeats (each
    its own seed): pairing cannot cancel initialisation noise.
    """
    n = min(a.n, b.n)
    if n < 2:
        return None
    df = n - 1  # not n_a + n_b - 2: the pooled df lets too many A/A runs through (docs/method.md)
    acc_point = 100 * (statistics.fmean(b.test_accuracy) - statistics.fmean(a.test_accuracy))
    acc = _interval(acc_point, 100 * (b.accuracy_draws - a.accuracy_draws), n, df)
    pair = paired_intervals(a, b) if paired else None
    if pair is not None:
        step, train, sets = pair
    else:
        step = _interval(b.step_ms / a.step_ms, b.step_draws / a.step_draws, n, df)
        train = _interval(
            median(b.train_s_per_epoch) / median(a.train_s_per_epoch),
            b.train_draws / a.train_draws,
            n,
            df,
        )
        sets = 0
    per_sample = b.batch_size / a.batch_size  # samples/s ratio = batch ratio ÷ step ratio
    samples = Interval(per_sample / step.point, per_sample / step.hi, per_sample / step.lo)
    return Comparison(step, samples, train, acc, sets)


@dataclass(frozen=True)
class NoiseFloor:
    """This run's A/A control: the baseline against an identical second arm, interleaved."""

    step: float  # |A2 ÷ A1 − 1| of the median step (judges step and samples/s ratios)
    accuracy_pt: float  # |A2 − A1| of the mean test accuracy, in points
    comparison: Comparison
    # |A2 ÷ A1 − 1| of training seconds per epoch: s/epoch ratios are judged against their own
    # A/A difference, not the step's (an epoch adds the per-epoch overheads the step leaves out).
    train_epoch: float = 0.0


def noise_floor(a1: Arm, a2: Arm) -> NoiseFloor | None:
    """The A/A difference, which a real difference must exceed; None without two repeats."""
    c = compare_arms(a1, a2)
    if c is None:
        return None
    return NoiseFloor(
        abs(c.step_ratio.point - 1),
        abs(c.accuracy_delta_pt.point),
        c,
        abs(c.train_epoch_ratio.point - 1),
    )


# The one verdict rule (docs/method.md, the report header): a difference is real only when its
# whole 95% interval lies beyond the noise floor. For a ratio that is lo > 1 + f or hi < 1 - f,
# f being the A/A control's |ratio - 1|; for a difference in points, lo > f or hi < -f. Not just
# the point: a point outside the floor with an interval reaching into it is not called real.
VERDICT_RULE = (
    "a difference is called real only when its whole 95% interval lies beyond the noise floor "
    "(for a ratio: above 1 + f or below 1 − f, f being the A/A control's distance from 1; for "
    "accuracy: beyond ± the A/A control's difference in points); otherwise it is no measurable "
    "difference (±X, what the comparison could resolve), or unresolved (±H, the interval's "
    "relative half-width) when a step-time interval is wider than the run's target"
)
DEFAULT_TARGET_HALFWIDTH = 0.03  # a step ratio resolves when its interval reaches ±3% or less


def beyond_floor(ci: Interval, no_change: float, floor: float) -> int:
    """+1 when the whole interval lies above no_change + floor, -1 below no_change - floor, else 0."""
    if ci.lo > no_change + floor:
        return 1
    if ci.hi < no_change - floor:
        return -1
    return 0


def relative_half_width(ratio: Interval) -> float:
    """How far the interval reaches from its point, relatively: max(hi/point - 1, 1 - lo/point)."""
    return max(ratio.hi / ratio.point - 1, 1 - ratio.lo / ratio.point)


def resolved(ratio: Interval, target: float = DEFAULT_TARGET_HALFWIDTH) -> bool:
    """Whether a ratio's interval is as narrow as the run's target asks."""
    return relative_half_width(ratio) <= target


def _pct(fraction: float) -> str:
    value = 100 * fraction
    return f"{value:.1f}" if value < 9.95 else f"{value:.0f}"


def ratio_verdict(
    ratio: Interval | None,
    floor: float = 0.0,
    *,
    target: float | None = None,
    above: str = "slower",
    below: str = "faster",
) -> str:
    """`above`/`below` only if the whole CI lies beyond the noise floor (VERDICT_RULE).

    Otherwise 'no measurable difference (±X%)', X being what this comparison could resolve: the
    larger of the interval's reach from 1 and the floor; or, when a `target` half-width is given
    and the interval is wider than it, 'unresolved (±H%)', H being its relative half-width.
    """
    if ratio is None:
        return NO_SPREAD
    side = beyond_floor(ratio, 1.0, floor)
    if side:
        return above if side > 0 else below
    if target is not None and not resolved(ratio, target):
        return f"unresolved (±{_pct(relative_half_width(ratio))}%)"  # comparable with the target
    return f"no measurable difference (±{_pct(max(ratio.half_width(1.0), floor))}%)"


def difference_verdict(
    delta: Interval | None,
    floor: float = 0.0,
    *,
    unit: str = "pt",
    above: str = "more accurate",
    below: str = "less accurate",
) -> str:
    """The same rule for a difference (e.g. accuracy points): the whole CI beyond ± the floor."""
    if delta is None:
        return NO_SPREAD
    side = beyond_floor(delta, 0.0, floor)
    if side:
        return above if side > 0 else below
    return f"no measurable difference (±{max(delta.half_width(0.0), floor):.2f} {unit})"


UNDECIDED = ("no ", "unresolved")


def is_difference(verdict: str) -> bool:
    """Whether a verdict calls a difference real (not 'no measurable…', 'unresolved…', 'no spread')."""
    return not verdict.startswith(UNDECIDED)


def stdev(values: Sequence[float]) -> float | None:
    """Sample standard deviation; None for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else None


# --- Over seeds: figures of whole training runs -------------------------------------------------
#
# A long run's figures (accuracy at an epoch, seconds to a target) vary with the seed; each seed's
# run is one independent sample (docs/method.md, "The walkthrough's run" and "Time to target").

NOT_REACHED = math.inf  # a run that never reached the target sorts as the slowest


def mean_interval(values: Sequence[float]) -> Interval | None:
    """The mean with its 95% t-interval (df = n − 1); None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = statistics.fmean(values)
    half = t975(n - 1) * statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)


def _binomial_tail(n: int, k: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def median_interval(values: Sequence[float]) -> tuple[Interval, float] | None:
    """The median with its distribution-free order-statistic interval and that interval's exact
    coverage: the narrowest (x_(k), x_(n−k+1)) covering at least 95%, or the widest (min, max)
    when n is too small for 95% (5 values give 93.8%). Infinite values (targets not reached)
    sort last and may be an end. None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    xs = sorted(values)
    k = 1
    while k + 1 <= n - k and 1 - 2 * _binomial_tail(n, k) >= 0.95:
        k += 1
    coverage = 1 - 2 * _binomial_tail(n, k - 1)
    mid = n // 2
    point = xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2
    return Interval(point, xs[k - 1], xs[n - k]), coverage


def drop_two_mean(values: Sequence[float]) -> float | None:
    """MLPerf Training's score of a set of runs: the mean after dropping the fastest and the
    slowest. A run that never reached the target counts as infinitely slow, so one such run is
    dropped as the slowest and a second makes the score infinite. None for fewer than 3 runs."""
    if len(values) < 3:
        return None
    kept = sorted(values)[1:-1]
    return statistics.fmean(kept) if all(math.isfinite(v) for v in kept) else NOT_REACHED
