"""`mnist-bench compare` of two paired runs: their paired ratios, then absolute times, labelled.

Synthetic runs (tests/synthetic.py) on two machines: B's machine takes 1.3 times as long for every
step of every arm, and in B batch 512 alone costs 1.2 times what it cost against the baseline in A.
"""

from __future__ import annotations

import dataclasses

import pytest

from bench import stats
from bench.plan.variant import Variant
from bench.report.aggregate import summarize_run
from bench.report.compare import paired_rows, render_compare
from tests.synthetic import MACHINE, paired_run

BASE = Variant(batch_size=32, epochs=1)
CONTROL = dataclasses.replace(BASE, control=True)
BIG = Variant(batch_size=512, epochs=1)
MIXED = Variant(batch_size=32, precision="mixed_bfloat16", epochs=1)
A_MS = {BASE: 2.0, CONTROL: 2.0, BIG: 6.0, MIXED: 2.1}
SLOWER_MACHINE = 1.3
BIG_CHANGE = 1.2
OTHER_MACHINE = MACHINE | {"cpu_model": "Other CPU", "cpu_cores": 4}


def _runs() -> tuple[list[dict], list[dict]]:
    b_ms = {v: SLOWER_MACHINE * ms * (BIG_CHANGE if v == BIG else 1.0) for v, ms in A_MS.items()}
    a = paired_run(A_MS, run_id="a", seed=1)
    b = paired_run(b_ms, run_id="b", seed=2, machine=OTHER_MACHINE)
    return a, b


@pytest.fixture(scope="module")
def runs() -> tuple[list[dict], list[dict]]:
    return _runs()


def _cells(text: str, section: str, variant: str) -> list[str]:
    """The table cells of `variant` in the section whose heading starts with `section`."""
    part = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in part.splitlines() if x.startswith(f"| {variant} "))
    return [c.strip() for c in line.strip("|").split("|")]


def test_only_the_variant_whose_relative_cost_changed_is_called_different(runs):
    """Catches: paired runs compared by absolute times (every variant 'slower' on B's slower
    machine), or a ratio of ratios turned upside down (batch 512 called faster)."""
    text = render_compare(*runs, "a", "b")
    for v in (CONTROL, MIXED):
        verdict = _cells(text, "Paired ratios", v.id)[-1]
        assert not stats.is_difference(verdict), verdict
    assert _cells(text, "Paired ratios", BIG.id)[-1] == "slower"
    # the absolute comparison stays visible, and says what it is: two machines, two times
    assert "## Absolute step times, taken on different machines and at different times" in text
    assert _cells(text, "Absolute step times", BASE.id)[4] == "slower"
    assert "**Warning: the machines differ** (cpu: ('Test CPU', 2) → ('Other CPU', 4))" in text


def test_paired_runs_are_compared_by_their_paired_ratios_not_absolute_times(runs):
    """Catches: compare falling back to B ÷ A of absolute step times for paired runs (the
    unchanged variants would come out near 1.3, batch 512 near 1.56)."""
    a, b = (summarize_run(r) for r in runs)
    rows = {r["variant_id"]: r for r in paired_rows(a, b)}
    assert set(rows) == {CONTROL.id, BIG.id, MIXED.id}  # the baseline is 1 by definition
    for vid in (CONTROL.id, MIXED.id):
        assert rows[vid]["change"].point == pytest.approx(1.0, abs=0.04)
        assert not rows[vid]["change"].excludes(1.0)
    assert rows[BIG.id]["change"].point == pytest.approx(BIG_CHANGE, rel=0.04)
    assert not rows[BIG.id]["change"].excludes(BIG_CHANGE)
    # it is the ratio of the runs' own paired ratios, each from its sets
    ca, cb = rows[BIG.id]["a"], rows[BIG.id]["b"]
    assert (ca.paired_sets, cb.paired_sets) == (6, 6)
    assert rows[BIG.id]["change"].point == pytest.approx(cb.step_ratio.point / ca.step_ratio.point)


def test_the_paired_floor_combines_both_runs_floors(runs):
    """Catches: the paired verdict judged against one run's floor only (the larger, as the
    absolute table does) instead of both runs' in quadrature."""
    a, b = (summarize_run(r) for r in runs)
    text = render_compare(*runs, "a", "b")
    expected = stats.cross_run_floor(a.floor.step, b.floor.step)
    assert f"= {100 * expected:.1f}% from the runs' A/A floors" in text
    assert expected > max(a.floor.step, b.floor.step)


def test_same_machine_is_said_and_unpaired_runs_keep_the_absolute_comparison():
    """Catches: a machine check that stays silent when the machines match, and unpaired runs
    (one job after another) given a paired table built from nothing."""
    a, _ = _runs()
    again = paired_run(A_MS, run_id="again", seed=3)
    text = render_compare(a, again, "a", "again")
    assert "**Machines:** the same in both runs' records (CPU Test CPU, 2 cores" in text
    assert "## Absolute step times, taken at different times" in text
    unpaired = [{k: v for k, v in r.items() if k != "pairing"} for r in a]
    for r in unpaired:
        r["timing"] = {k: v for k, v in r["timing"].items() if k != "pauses"}
    text = render_compare(unpaired, unpaired, "a", "a")
    assert "## Paired ratios" not in text
    assert "**No paired ratios:** neither run ran in paired sets" in text
    assert "B ÷ A step [95% CI]" in text
    mixed = render_compare(a, unpaired, "a", "u")
    assert "B ran one job after another" in mixed
