"""Runs of several epochs over seeds: the walkthrough's side-by-side verdicts, the time-to-target
rule (not reached, MLPerf's drop-two mean), the overfitting finding and validation's cost.

No TensorFlow: SeedRuns are made up here, with known answers.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from bench import stats
from bench.report import seeds, to_target, walkthrough
from bench.report.seeds import SeedRun

MODEL = {
    "params": 118_282,
    "param_bytes": 473_128,
    "layers": [
        {"layer": "flatten", "params": 0},
        {"layer": "dense", "params": 100_480},
        {"layer": "dense_1", "params": 16_512},
        {"layer": "dense_2", "params": 1_290},
    ],
}


def run(
    val_loss: list[float],
    *,
    val_accuracy: list[float | None] | None = None,
    train_s: float = 5.0,
    val_s: float = 0.5,
    eval_s: float = 0.5,
    set_id: str | None = "g0-r0",
    first: dict[str, float] | None = None,
) -> SeedRun:
    n = len(val_loss)
    first = first or {}
    acc = [first.get("accuracy", 0.9)] + [0.95] * (n - 1)
    loss = [first.get("loss", 0.3)] + [0.1] * (n - 1)
    va = val_accuracy if val_accuracy is not None else [0.95] * n
    return SeedRun(
        "bs32-per_epoch-float32-cpu-e30",
        set_id,
        {"accuracy": acc, "loss": loss, "val_accuracy": va, "val_loss": val_loss},
        [train_s] * n,
        [val_s if va[0] is not None else 0.0] * n,
        eval_s,
        0.95,
        1875,
    )


# --- The side-by-side verdicts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("printed", "lo", "hi", "want"),
    [
        (0.9488, 0.94, 0.95, "matches"),
        (0.9488, 0.9488, 0.95, "matches"),  # on the edge: inside
        (0.9488, 0.94, 0.9488, "matches"),
        (0.9488, 0.9489, 0.96, "differs"),
        (0.9488, 0.93, 0.9487, "differs"),
        (118_282, 118_282, 118_282, "matches"),  # an exact count must be equal
        (118_282, 118_281, 118_281, "differs"),
    ],
)
def test_a_verdict_matches_exactly_when_the_printed_figure_lies_inside(printed, lo, hi, want):
    """Catches: a verdict from the point estimate alone, a half-open interval, or a tolerance."""
    assert walkthrough.verdict(printed, stats.Interval((lo + hi) / 2, lo, hi)) == want


def test_no_printed_figure_or_no_interval_gets_a_dash_not_a_verdict():
    """Catches: the epoch-30 rows (the walkthrough printed none) reading "differs"."""
    assert walkthrough.verdict(None, stats.Interval(1, 0, 2)) == "–"
    assert walkthrough.verdict(0.5, None) == "–"


def test_the_side_by_side_table_fills_every_row_from_the_seeds():
    """Catches: a row left empty, a model fact read from the wrong layer, or an epoch-1 figure
    taken from the last epoch; the printed epoch-1 accuracy lies inside these seeds' interval."""
    runs = [
        run([0.2] * 30, set_id=f"g0-r{i}", first={"accuracy": a, "loss": 0.38})
        for i, a in enumerate((0.880, 0.884, 0.882, 0.886, 0.879))
    ]
    table = walkthrough.table(runs, MODEL)
    by = {r["figure"]: r for r in table}
    assert by["dense params"]["verdict"] == "matches"
    assert by["total params"]["this run: mean of 5 seeds [95% CI]"] == "118,282 (every seed)"
    assert by["parameter memory KB"]["verdict"] == "matches"  # 473,128 B / 1024 = 462.04
    assert by["steps per epoch"]["verdict"] == "matches"
    assert by["epoch 1 accuracy"]["verdict"] == "matches"
    assert by["epoch 1 loss"]["verdict"] == "differs"  # every seed 0.38, printed 0.3846
    assert (
        by["epoch 30 val_loss"]["walkthrough"] == "–" and by["epoch 30 val_loss"]["verdict"] == "–"
    )
    assert all(r["this run: mean of 5 seeds [95% CI]"] not in ("", "–") for r in table)


def test_only_the_walkthroughs_configuration_gets_the_table():
    """Catches: the table put over a run at another learning rate, batch or epoch count."""
    base = dict(walkthrough.CONFIG, control=False)
    assert walkthrough.is_walkthrough(base)
    assert not walkthrough.is_walkthrough({**base, "learning_rate": 0.001})
    assert not walkthrough.is_walkthrough({**base, "epochs": 1})
    assert not walkthrough.is_walkthrough({**base, "control": True})


# --- Time to target -----------------------------------------------------------------------------


def test_time_to_target_is_the_training_seconds_to_the_first_epoch_reaching_it():
    """Catches: validation seconds counted, the last epoch reaching it used, or >= read as >."""
    r = run([0.2] * 4, val_accuracy=[0.95, 0.97, 0.96, 0.98], train_s=5.0, val_s=9.0)
    assert to_target.seed_time(r, 0.97) == (10.0, 2)
    assert to_target.seed_time(r, 0.98) == (20.0, 4)
    assert to_target.seed_time(r, 0.99) == (stats.NOT_REACHED, None)


def test_seeds_that_never_reach_the_target_are_counted_never_dropped():
    """Catches: not-reached seeds left out of the median (which would make 2 of 5 look like a
    typical time) or of the count."""
    hit = [0.96, 0.97, 0.97]
    miss = [0.96, 0.96, 0.96]
    runs = [run([0.2] * 3, val_accuracy=hit, train_s=s) for s in (4.0, 5.0)] + [
        run([0.2] * 3, val_accuracy=miss) for _ in range(3)
    ]
    t = to_target.time_to_target(runs, 0.97)
    assert t.reached == 2 and len(t.times) == 5
    assert to_target.median_cell(t) == "not reached"
    row = to_target.row("arm", runs, 0.97)
    assert row["reached"] == "2 of 5 seeds"
    assert row["seconds of the seeds that reached it"] == "8.0, 10.0"  # the two that did


def test_mlperf_score_drops_the_fastest_and_the_slowest_and_not_reached_counts_as_slowest():
    """Catches: a plain mean, dropping two fastest, or a not-reached seed silently dropped
    when a second one should make the score not reached."""
    assert stats.drop_two_mean([10, 50, 20, 30, 40]) == 30
    assert stats.drop_two_mean([10, 20, 30, 40, math.inf]) == 30  # the one miss is the slowest
    assert math.isinf(stats.drop_two_mean([10, 20, 30, math.inf, math.inf]))
    assert stats.drop_two_mean([10, 20]) is None


def test_the_median_interval_is_order_statistics_with_its_exact_coverage():
    """Catches: a coverage claimed as 95% that 5 seeds cannot give, or the wrong order statistic."""
    ci, coverage = stats.median_interval([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (ci.point, ci.lo, ci.hi) == (3.0, 1.0, 5.0) and coverage == pytest.approx(0.9375)
    ci, coverage = stats.median_interval([float(x) for x in range(1, 11)])
    assert (ci.lo, ci.hi) == (2.0, 9.0) and coverage == pytest.approx(0.978515625)
    ci, _ = stats.median_interval([1.0, 2.0, 3.0, math.inf, math.inf])
    assert ci.point == 3.0 and math.isinf(ci.hi)


# --- Overfitting --------------------------------------------------------------------------------


def test_validation_loss_climbing_after_its_minimum_is_called_overfitting():
    """Catches: the finding taken from the last epoch alone, or the best epoch off by one."""
    curve = [0.25, 0.19, 0.20, 0.24, 0.30, 0.36]
    runs = [
        run([v + d for v in curve], set_id=f"g0-r{i}")
        for i, d in enumerate((0, 0.01, -0.01, 0.005, 0))
    ]
    o = seeds.overfitting(runs)
    assert o is not None and o.best_epoch == 2 and o.last == 6
    assert o.overfits and o.rise.point == pytest.approx(0.17, abs=0.01)
    assert "**overfits** after epoch 2" in seeds.overfitting_line(o, "arm")


def test_a_flat_noisy_validation_loss_is_not_called_overfitting():
    """Catches: overfitting called whenever the last epoch is above the minimum (always true of a
    noisy curve), instead of from the interval over seeds."""
    runs = [
        run([0.20, 0.20 + d, 0.20 - d, 0.20 + d], set_id=f"g0-r{i}")
        for i, d in enumerate((0.01, -0.01, 0.02, -0.02, 0.0))
    ]
    o = seeds.overfitting(runs)
    assert o is not None and not o.overfits
    assert "no overfitting shown" in seeds.overfitting_line(o, "arm")


def test_an_arm_without_per_epoch_validation_has_no_curves_and_no_finding():
    """Catches: end_only's all-empty validation curve read as a curve."""
    runs = [run([None] * 3, val_accuracy=[None] * 3, set_id=f"g0-r{i}") for i in range(3)]  # type: ignore[list-item]
    assert not seeds.has_curves(runs) and seeds.overfitting(runs) is None


# --- Validation's cost --------------------------------------------------------------------------


def test_validation_cost_pairs_the_arms_by_set():
    """Catches: the ratio taken across sets (unpaired), end_only's evaluate left out, or a stall
    counted as cost: here set r0 ran slow for both arms, so only a paired ratio is the same in
    every set."""
    per_epoch = [
        run([0.2] * 2, set_id="g0-r0", train_s=10.0, val_s=1.0),
        run([0.2] * 2, set_id="g0-r1", train_s=5.0, val_s=0.5),
        run([0.2] * 2, set_id="g0-r2", train_s=5.0, val_s=0.5),
    ]
    end_only = [
        run([None] * 2, val_accuracy=[None] * 2, set_id="g0-r0", train_s=10.0, eval_s=1.0),  # type: ignore[list-item]
        run([None] * 2, val_accuracy=[None] * 2, set_id="g0-r1", train_s=5.0, eval_s=0.5),  # type: ignore[list-item]
        run([None] * 2, val_accuracy=[None] * 2, set_id="g0-r2", train_s=5.0, eval_s=0.5),  # type: ignore[list-item]
    ]
    # a 5-s stall of the machine inside one arm's training is no cost of validating
    stalled = per_epoch[1]
    per_epoch[1] = dataclasses.replace(stalled, train_s=[10.0, 5.0], stalled_s=5.0)
    ratio, n = seeds.validation_cost(per_epoch, end_only)
    assert n == 3 and ratio.point == pytest.approx(22 / 21) and ratio.hi - ratio.lo < 1e-9
    share = seeds.validation_share(per_epoch)
    assert share.point == pytest.approx(1 / 11)
