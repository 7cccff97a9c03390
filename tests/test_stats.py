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


def test_cv_needs_two_values_and_mad_iqr():
    assert stats.cv([3.0]) is None
    assert stats.mad([1.0, 2.0, 3.0, 4.0, 100.0]) == 1.0
    assert stats.iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == 2.0


def test_empty_input_raises():
    with pytest.raises(ValueError, match="no values"):
        stats.median([])
    with pytest.raises(ValueError, match="outside"):
        stats.percentile([1.0], 101)
