"""A run's summary from synthetic raw records of known truth: rows, intervals, A/A floor, probes."""

from __future__ import annotations

import re

import pytest

from bench import stats
from bench.plan.variant import Variant
from bench.report import aggregate
from tests.synthetic import arm_records, probe_record, variant_record

BASE = Variant(batch_size=32)
CONTROL = Variant(batch_size=32, control=True)
BIG = Variant(batch_size=128)


def _records():
    return [
        probe_record("start", [100.0, 120.0]),
        *arm_records(BASE, [2.0, 2.1, 1.9, 2.0, 2.05], seed=1),
        *arm_records(CONTROL, [2.02, 2.0, 1.95, 2.1, 2.0], seed=2),
        *arm_records(BIG, [4.0, 4.2, 3.9, 4.1, 4.0], seed=3),
        probe_record("end", [60.0, 118.0]),
    ]


def test_rows_derive_every_figure_from_the_raw_steps():
    summary = aggregate.summarize_run(_records())
    base = summary.row(BASE.id)
    medians = [stats.median(r["timing"]["step_ms_raw"][0][1:]) for r in _records()[1:6]]
    assert base["step_ms"] == pytest.approx(stats.typical_step(medians))
    assert base["step_ms_ci_lo"] < base["step_ms"] < base["step_ms_ci_hi"]
    assert base["samples_per_s"] == pytest.approx(32_000 / base["step_ms"])
    assert base["achieved_flops_per_s"] == pytest.approx(1e7 / (base["step_ms"] / 1000))
    assert base["repeats_ok"] == 5 and base["test_accuracy"] == pytest.approx(0.95)


def _constant_arm(variant, step_ms, accuracy, repeats=3):
    """Every step of every repeat exactly step_ms: the arm's typical step is step_ms itself."""
    return [variant_record(variant, r, [step_ms] * 50, accuracy=accuracy) for r in range(repeats)]


# Catches: the floor taken from the baseline against itself (0), from the wrong arm (the batch-128
# variant: 100% and 5 pt), inverted (base ÷ control: 4.76%), and verdicts that ignore it.
def test_the_control_arm_gives_the_noise_floor_and_is_no_axis_value():
    mixed = Variant(batch_size=32, precision="mixed_bfloat16")
    records = [
        *_constant_arm(BASE, 2.0, 0.95),
        *_constant_arm(CONTROL, 2.1, 0.94),  # 5% slower, 1 pt less accurate: the A/A floor
        *_constant_arm(BIG, 4.0, 0.90),
        *_constant_arm(mixed, 2.08, 0.95),  # 4% slower: beyond 1, within the floor
    ]
    summary = aggregate.summarize_run(records)
    assert summary.baseline == BASE.id and summary.control == CONTROL.id
    floor = summary.floor
    assert floor is not None
    assert floor.step == pytest.approx(0.05)
    assert floor.accuracy_pt == pytest.approx(1.0)
    assert floor.comparison.step_ratio.point == pytest.approx(1.05)
    # The control is no value of any axis; the variants that are get judged against the floor.
    axis_rows = [e["row"]["variant_id"] for es in summary.comparisons.values() for e in es]
    assert sorted(axis_rows) == sorted([BIG.id, mixed.id])
    (entry,) = summary.comparisons["precision"]
    assert entry["comparison"].step_ratio.point == pytest.approx(1.04)
    assert entry["step_verdict"] == "no measurable difference (±5.0%)"
    (entry,) = summary.comparisons["batch_size"]
    assert entry["step_verdict"] == "slower"  # 2× lies beyond 1.05
    assert entry["accuracy_verdict"] == "less accurate"  # −5 pt lies beyond −1 pt


def test_the_peak_is_the_best_trial_and_a_busy_probe_is_flagged():
    summary = aggregate.summarize_run(_records())
    assert summary.peaks[("cpu", "float32")] == pytest.approx(120e9)
    spread = summary.probes[("cpu", "float32", 1024)]
    assert (spread.best, spread.worst, spread.trials) == (100e9, 60e9, 2)
    assert set(summary.busy_probes) == {("cpu", "float32", 1024)}
    row = summary.row(BASE.id)
    assert row["pct_of_peak"] == pytest.approx(100 * row["achieved_flops_per_s"] / 120e9)


def test_one_repeat_has_no_interval_and_no_verdict():
    records = [variant_record(BASE, 0, [2.0] * 50), variant_record(BIG, 0, [4.0] * 50)]
    summary = aggregate.summarize_run(records)
    assert summary.row(BASE.id)["step_ms_ci_lo"] is None
    assert stats.compare_arms(summary.arms[BASE.id], summary.arms[BIG.id]) is None


def test_the_fastest_backend_is_named_only_with_its_verdict():
    from bench.report.findings import findings

    jax = Variant(batch_size=32, backend="jax")
    records = [
        *arm_records(BASE, [2.0, 2.1, 1.9, 2.0, 2.05], seed=1),
        *arm_records(jax, [0.6, 0.62, 0.58, 0.61, 0.6], seed=4),
    ]
    text = "\n".join(findings(aggregate.summarize_run(records)))
    assert "Backends at batch 32, float32: `jax` has the shortest median step" in text
    assert "vs tensorflow" in text and ": faster" in text
    same = [*arm_records(BASE, [2.0, 2.1, 1.9, 2.0, 2.05], seed=1)]
    same += arm_records(jax, [2.0, 2.08, 1.95, 2.02, 2.0], seed=5)
    text = "\n".join(findings(aggregate.summarize_run(same)))
    assert "no backend is measurably fastest" in text
    # A third backend is also put against the default one, when that is not the fastest.
    torch = Variant(batch_size=32, backend="torch")
    three = [*records, *arm_records(torch, [4.0, 4.2, 3.9, 4.1, 4.0], seed=6)]
    text = "\n".join(findings(aggregate.summarize_run(three)))
    assert re.search(r"Against tensorflow: torch 2\.\d\d× \[[\d.–]+\]: slower\.", text)
