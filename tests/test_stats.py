import math

import pytest

from bench import stats


def test_percentile_matches_numpy_linear_method():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert stats.percentile(values, 50) == 3.0
    assert stats.percentile(values, 10) == pytest.approx(1.4)
    assert stats.percentile(values, 90) == pytest.approx(7.6)
    assert stats.percentile([5.0], 90) == 5.0


def test_summary_of_literal_numbers():
    s = stats.summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s["median"] == 4.5
    assert s["mean"] == 5.0
    assert s["cv"] == pytest.approx(2.138089935 / 5.0)
    assert (s["min"], s["max"], s["n"]) == (2.0, 9.0, 8)


def test_cv_needs_two_values_and_mad():
    assert stats.cv([3.0]) is None
    assert stats.mad([1.0, 2.0, 3.0, 4.0, 100.0]) == 1.0


def test_empty_input_raises():
    with pytest.raises(ValueError, match="no values"):
        stats.median([])
    with pytest.raises(ValueError, match="outside"):
        stats.percentile([1.0], 101)


def test_an_interleaved_runs_block_openings_are_left_out_and_blocks_split_at_pauses():
    raw = [[50.0, 2.0, 2.0, 9.0, 2.5, 2.5], [8.0, 3.0, 3.0]]  # pauses after calls 3 and 6
    pauses = [[3, 0.4], [6, 0.2]]
    _, timed = stats.timed_steps(raw, 1, pauses=pauses)
    assert timed == [2.0, 2.0, 2.5, 2.5, 3.0, 3.0]  # 50 (trace), 9.0 and 8.0 (openings) out
    assert stats.block_medians(raw, 1, pauses) == [2.0, 2.5, 3.0]
    # the warm-up reaches into the second block: what is left of it counts
    assert stats.block_medians(raw, 5, pauses) == [None, 2.5, 3.0]
    assert stats.timed_steps(raw, 1)[1] == [2.0, 2.0, 9.0, 2.5, 2.5, 8.0, 3.0, 3.0]  # no pauses


def test_each_epochs_partial_last_batch_is_left_out_of_blocks_and_timed_steps():
    # Bug caught: the partial batch (e.g. 608 of 60,000 images at batch 2048) counted as a step at
    # the variant's batch size, or the wrong call dropped (the last of the run only, or the first
    # of the next epoch).
    raw = [[50.0, 9.0, 9.0, 3.0], [9.5, 9.0, 2.5]]  # two epochs, each ending in a short call
    pauses = [[2, 0.1], [5, 0.1]]
    # calls 3 and 6 open blocks; 4 and 7 are the epochs' short ones
    assert stats.blocks(raw, 1, pauses, short_last=True) == [[9.0], [9.5], []]
    assert stats.blocks(raw, 1, pauses) == [[9.0], [3.0, 9.5], [2.5]]
    assert stats.timed_steps(raw, 1, short_last=True)[1] == [9.0, 9.0, 9.5, 9.0]
    record = {
        "variant": {"batch_size": 2048},
        "accuracy": {"train_images": 60000},
        "timing": {"steps_per_epoch": 30},
    }
    assert stats.short_last_call(record)
    record["variant"]["batch_size"] = 32  # 1,875 whole batches
    assert not stats.short_last_call(record)
    record["variant"]["steps_per_execution"] = 4  # 1,875 steps: the last call runs 3
    assert stats.short_last_call(record)


def test_a_paired_interval_is_a_t_interval_over_sets_of_their_log_ratios():
    logs = [0.01, 0.03, -0.01, 0.02]
    ci = stats.t_ratio_interval(logs)
    mean, sd = 0.0125, 0.017078251
    assert ci.point == pytest.approx(math.exp(mean))
    assert ci.lo == pytest.approx(math.exp(mean - 3.182 * sd / 2))
    assert ci.hi == pytest.approx(math.exp(mean + 3.182 * sd / 2))
    with pytest.raises(ValueError, match="two paired sets"):
        stats.t_ratio_interval([0.1])


def test_two_runs_ratios_compare_by_welchs_t_interval_on_their_set_log_ratios():
    """Catches: a pooled (Student) df, sets of the two runs treated as paired, the sign flipped."""
    a, b = [0.01, 0.03, -0.01, 0.02], [0.20, 0.25, 0.22]
    ci = stats.welch_ratio_interval(a, b)
    # means 0.0125 and 0.22333; variances 0.00029167 and 0.00063333; se² = 0.00029167/4 +
    # 0.00063333/3 = 0.00028403; Welch-Satterthwaite df = 3.35, rounded down to 3: t = 3.182
    half = 3.182 * math.sqrt(0.000284028)
    assert ci.point == pytest.approx(math.exp(0.210833), rel=1e-5)
    assert ci.lo == pytest.approx(math.exp(0.210833 - half), rel=1e-5)
    assert ci.hi == pytest.approx(math.exp(0.210833 + half), rel=1e-5)
    flipped = stats.welch_ratio_interval(b, a)
    assert flipped.point == pytest.approx(1 / ci.point)
    with pytest.raises(ValueError, match="two sets in each"):
        stats.welch_ratio_interval(a, [0.2])


def test_a_ratio_of_ratios_floor_adds_both_runs_floors_in_quadrature():
    """Catches: the larger floor alone (one run's noise ignored) or the plain sum."""
    assert stats.cross_run_floor(0.03, 0.04) == pytest.approx(0.05)
    assert stats.cross_run_floor(0.0, 0.02) == pytest.approx(0.02)  # a run without a control
