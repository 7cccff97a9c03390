"""The comparison statistics on simulated runs of known truth (seeded, so deterministic).

A simulated arm has `repeats` fresh processes; each process' typical step is the true step time
times a log-normal process effect (CV ≈ BETWEEN), and its steps scatter log-normally around that
(WITHIN), with a few long pauses, as on the 2-core dev machine.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench import stats

RUNS = 200
REPEATS = 5
STEPS = 400
BETWEEN = 0.08  # repeat-to-repeat CV; the reference run saw 2-16%
WITHIN = 0.15


def _arm(rng: np.random.Generator, label: str, true_ms: float) -> stats.Arm:
    repeats = []
    for _ in range(REPEATS):
        typical = true_ms * rng.lognormal(0.0, BETWEEN)
        steps = typical * rng.lognormal(0.0, WITHIN, STEPS)
        steps[rng.random(STEPS) < 0.002] *= 20  # pauses (GC, neighbours)
        repeats.append(tuple(float(s) for s in steps))
    accuracy = tuple(float(a) for a in rng.normal(0.95, 0.004, REPEATS))
    train = tuple(float(np.median(r)) * STEPS / 1000 for r in repeats)
    return stats.Arm(label, 32, tuple(repeats), train, accuracy)


def _runs(ratio: float, seed: int) -> list[stats.Comparison]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(RUNS):
        a, b = _arm(rng, f"a{i}", 1.5), _arm(rng, f"b{i}", 1.5 * ratio)
        comparison = stats.compare_arms(a, b)
        assert comparison is not None
        out.append(comparison)
    return out


@pytest.fixture(scope="module")
def identical() -> list[stats.Comparison]:
    return _runs(1.0, seed=1)


def test_the_95_percent_interval_covers_the_true_ratio(identical):
    # The true step ratio is the ratio of the arms' true medians: 1.0 here, 1.3 below.
    covered = sum(not c.step_ratio.excludes(1.0) for c in identical)
    assert covered / RUNS >= 0.90
    slower = _runs(1.3, seed=2)
    covered = sum(not c.step_ratio.excludes(1.3) for c in slower)
    assert covered / RUNS >= 0.90


def test_a_true_1_3x_slowdown_is_called_slower():
    calls = [stats.ratio_verdict(c.step_ratio) for c in _runs(1.3, seed=3)]
    assert calls.count("slower") / RUNS >= 0.95


def test_identical_arms_are_rarely_called_different(identical):
    calls = [stats.ratio_verdict(c.step_ratio) for c in identical]
    assert sum(stats.is_difference(v) for v in calls) / RUNS <= 0.05
    accuracy = [stats.difference_verdict(c.accuracy_delta_pt) for c in identical]
    assert sum(stats.is_difference(v) for v in accuracy) / RUNS <= 0.05


def test_the_noise_floor_keeps_a_small_but_significant_change_unclaimed():
    ci = stats.Interval(1.03, 1.01, 1.05)  # excludes 1, but only 3%
    assert stats.ratio_verdict(ci) == "slower"
    assert stats.ratio_verdict(ci, floor=0.04) == "no measurable difference (±5%)"
    assert stats.ratio_verdict(stats.Interval(0.8, 0.7, 0.9), floor=0.04) == "faster"
    assert stats.ratio_verdict(None) == stats.NO_SPREAD


def test_expanded_percentiles_widen_small_samples_and_approach_95_percent():
    assert stats.expanded_alpha(5) == pytest.approx(2 * 0.00096, rel=0.05)
    assert stats.expanded_alpha(5, df=8) == pytest.approx(0.0099, rel=0.05)
    assert stats.expanded_alpha(2) < stats.expanded_alpha(5) < stats.expanded_alpha(30) < 0.05
    with pytest.raises(ValueError):
        stats.expanded_alpha(1)


def test_intervals_are_reproducible_from_the_same_data():
    rng = np.random.default_rng(7)
    a = _arm(rng, "same", 1.0)
    b = stats.Arm(a.label, a.batch_size, a.step_repeats, a.train_s_per_epoch, a.test_accuracy)
    assert stats.step_interval(a) == stats.step_interval(b)
