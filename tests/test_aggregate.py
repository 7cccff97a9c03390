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


def test_the_control_arm_gives_the_noise_floor_and_is_no_axis_value():
    summary = aggregate.summarize_run(_records())
    assert summary.baseline == BASE.id and summary.control == CONTROL.id
    floor = summary.floor
    assert floor is not None
    assert floor.step == pytest.approx(abs(floor.comparison.step_ratio.point - 1))
    assert stats.ratio_verdict(floor.comparison.step_ratio).startswith("no measurable")


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
