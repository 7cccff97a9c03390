"""`run --list`'s estimate of a paired run: sets of arms starting side by side, turns, budget_s."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from bench import records
from bench.plan.settings import RunSettings
from bench.plan.shard import compute_s
from bench.plan.variant import Variant
from bench.run import estimate

REFERENCE = Path(__file__).parent.parent / "reports" / "reference" / "results.jsonl"
SEED = Path(__file__).parent.parent / "reports" / "seed" / "results.jsonl"
BASE = Variant(batch_size=32, epochs=1)
ARMS = [
    BASE,
    dataclasses.replace(BASE, control=True),
    Variant(batch_size=512, epochs=1),
    Variant(batch_size=32, validation="end_only", epochs=1),
]
NEW = Variant(batch_size=2048, epochs=1)


def _estimate(arms, repeats=4, budget_s=0.0, cap=8):
    settings = RunSettings(repeats=repeats, budget_s=budget_s)
    return estimate.estimate(arms, settings, arms[0].id, cap)


def test_the_constants_are_what_the_reference_records_give():
    """Catches: a constant typed by hand, or left behind when a calibrating run is re-measured."""
    derived = estimate.calibrate(records.read_records(REFERENCE) + records.read_records(SEED))
    assert derived["startup_s_per_arm"] == pytest.approx(estimate.STARTUP_S_PER_ARM, rel=0.01)
    assert derived["turn_s_per_compute_s"] == pytest.approx(estimate.TURN_S_PER_COMPUTE_S, rel=0.01)
    assert derived["turn_s_per_arm"] == pytest.approx(estimate.TURN_S_PER_ARM, rel=0.01)
    assert derived["probe_s"] == pytest.approx(estimate.PROBE_S, rel=0.01)


def test_an_arm_costs_its_start_up_and_its_turns_in_every_set():
    """Catches: start-ups counted once per run (or as one, though side by side on 2 cores they
    share the cores), or turns taken as the longest arm's instead of adding up."""
    before, after = _estimate(ARMS), _estimate([*ARMS, NEW])
    per_set = (
        estimate.STARTUP_S_PER_ARM
        + estimate.TURN_S_PER_COMPUTE_S * compute_s(NEW)
        + estimate.TURN_S_PER_ARM
    )
    assert after.total_s - before.total_s == pytest.approx(4 * per_set)
    assert (before.groups, after.groups) == ((4,), (5,))
    assert _estimate(ARMS, repeats=6).sets_s == pytest.approx(1.5 * before.sets_s)


def test_budget_s_adds_whole_sets_only_while_they_fit():
    """Catches: extra sets that overrun budget_s, a budget counted on top of the minimum sets,
    or a budget that cuts the minimum sets short."""
    minimum = _estimate(ARMS)
    one_set = minimum.set_s[0]
    assert minimum.extra_sets == 0 and minimum.sets_s == pytest.approx(4 * one_set)
    budget = 6.5 * one_set
    extended = _estimate(ARMS, budget_s=budget)
    assert extended.extra_sets == 2
    assert extended.sets_s == pytest.approx(6 * one_set) and extended.sets_s <= budget
    short = _estimate(ARMS, budget_s=2 * one_set)  # less than the minimum: the minimum still runs
    assert (short.extra_sets, short.sets_s) == (0, pytest.approx(4 * one_set))
    # a smaller cap splits the arms into groups, each carrying the baseline and control
    split = _estimate(ARMS, cap=3)
    assert split.groups == (3, 3)
    assert split.sets_s > minimum.sets_s


@pytest.mark.parametrize("path", [REFERENCE, SEED], ids=["reference", "seed"])
def test_a_runs_estimate_is_within_a_quarter_of_what_it_took(path):
    """Catches: a model that forgets the stopping rule's extra sets (4 sets: a third short), the
    start-ups side by side (the one-job-after-another model fell far short of the reference run),
    or a cost per compute second fitted to 1-epoch arms only (it put the 30-epoch seed run at
    1.5 times what it took)."""
    recs = records.read_records(path)
    plan = recs[0]["run"]["plan"]
    by_id = {r["variant_id"]: r["variant"] for r in records.variant_records(recs)}
    variants = [Variant.from_dict(by_id[plan["baseline"]])]
    variants += [Variant.from_dict(v) for vid, v in by_id.items() if vid != plan["baseline"]]
    # The reference run predates the retired `paired` setting (it ran paired, as every run does now).
    settings = RunSettings(**{k: v for k, v in plan["settings"].items() if k != "paired"})
    e = estimate.estimate(variants, settings, plan["baseline"], cap=8)
    # from the start probe (written once the machine was probed, seconds after the start) to the
    # end probe, the last record
    started = datetime.fromisoformat(recs[0]["created_utc"])
    measured_s = (datetime.fromisoformat(recs[-1]["created_utc"]) - started).total_seconds()
    assert abs(e.total_s / measured_s - 1) <= 0.25
    set_s: dict[str, float] = {}
    for r in recs:
        if r.get("pairing"):
            set_s[r["pairing"]["set"]] = max(
                set_s.get(r["pairing"]["set"], 0), r["pairing"]["set_s"]
            )
    assert abs(e.sets_s / sum(set_s.values()) - 1) <= 0.25
    gpu = len({r["variant_id"] for r in records.variant_records(recs) if r["status"] == "skipped"})
    assert e.skipped_gpu == gpu  # a GPU arm skipped there costs nothing here
