"""Paired sets without TensorFlow: groups, set ids and repeats, the worker cap, the stopping rule."""

from __future__ import annotations

import dataclasses

import pytest

from bench import stats
from bench.plan.grouping import PairingError, group_arms, set_id, shared_repeat
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.records import read_records
from bench.run import pairs, resume, runner
from tests.conftest import REPO

BASE = Variant(batch_size=32)
CONTROL = dataclasses.replace(BASE, control=True)
OTHERS = [Variant(batch_size=b) for b in (64, 128, 256, 512, 1024)]


def test_every_group_carries_the_shared_arms_and_the_others_are_dealt_evenly():
    groups = group_arms([BASE, CONTROL], OTHERS, cap=4)
    assert [[v.batch_size for v in g] for g in groups] == [
        [32, 32, 64, 128],
        [32, 32, 256, 512],
        [32, 32, 1024],
    ]
    assert all(g[0] is BASE and g[1] is CONTROL for g in groups)
    assert group_arms([BASE, CONTROL], OTHERS, cap=7) == [(BASE, CONTROL, *OTHERS)]
    assert group_arms([BASE], [], cap=2) == [(BASE,)]
    with pytest.raises(PairingError, match=r"cannot hold the 2 shared arm.*max_workers to 3"):
        group_arms([BASE, CONTROL], OTHERS, cap=2)


def test_set_ids_name_group_round_and_shard_and_shared_repeats_are_unique():
    assert set_id(0, 3) == "g0-r3"
    assert set_id(1, 0, "2/4") == "s2of4-g1-r0"
    seen = {shared_repeat(r, g, 3) for r in range(5) for g in range(3)}
    assert seen == set(range(15))  # every (round, group) its own repeat, so its own seed


def test_a_set_gives_the_shared_arms_their_own_repeat_and_the_control_its_own_seed():
    pset = pairs.make_set(1, 2, [BASE, CONTROL, OTHERS[0]], baseline_id=BASE.id, groups=3)
    assert pset.id == "g1-r2"
    assert [(a.role, a.repeat) for a in pset.arms] == [
        ("baseline", 7),
        ("control", 7),
        ("arm", 2),
    ]
    seeds = [runner.job_seed(a.variant, a.repeat) for a in pset.arms]
    assert seeds == [
        7,
        7 + runner.CONTROL_SEED_OFFSET,
        2,
    ]  # the control never replays the baseline's


def _measured_worker_rss_bytes() -> int:
    """The largest peak RSS of a job in the reference run's records: a real TensorFlow worker."""
    records = read_records(REPO / "reports" / "reference" / "results.jsonl")
    return max(r["memory"]["peak_rss_bytes"] or 0 for r in records if r.get("status") == "ok")


def test_the_worker_cap_fits_measured_workers_in_free_memory_unless_set():
    """Bugs: a per-worker size or reserve in the wrong unit (MiB for GiB lets hundreds of workers
    start; GiB twice makes it always 2), a cap that shrinks as memory grows, free memory ignored,
    fewer than the 2 processes a pair needs, or a --set max_workers that memory overrides."""
    rss, gib = _measured_worker_rss_bytes(), 2**30
    assert 0.5 * gib < rss < 4 * gib  # the records hold a TensorFlow worker's size
    free = [n * gib for n in range(1, 65)]
    caps = [pairs.worker_cap(RunSettings(), available_bytes=b) for b in free]
    assert caps == sorted(caps) and caps[0] >= 2  # more memory never means fewer; a pair at least
    for b, cap in zip(free, caps, strict=True):
        if cap > 2:  # the workers it allows fit, at the size they were measured, with room left
            assert cap * rss + gib <= b, (b / gib, cap)
    assert caps[-1] * rss > 64 * gib / 2  # and it uses the memory there is
    assert pairs.worker_cap(RunSettings(max_workers=5), available_bytes=3 * gib) == 5
    assert pairs.worker_cap(RunSettings(max_workers=5), available_bytes=64 * gib) == 5
    with pytest.raises(PairingError, match="6 arms exceeds the cap of 5"):
        pairs.check_cap([(*OTHERS, BASE)], 5)


def _arm(label: str, set_ratios: list[float]) -> stats.Arm:
    """An arm paired with the baseline (block medians all 1.0) in len(set_ratios) sets."""
    sets = {f"run/g0-r{k}": stats.SetTimes((r, r, r), r) for k, r in enumerate(set_ratios)}
    steps = ((1.0, 1.0),) * len(set_ratios)
    return stats.Arm(label, 32, steps, (1.0,) * len(steps), (0.9,) * len(steps), sets)


BASE_ARM = _arm(BASE.id, [1.0] * 6)
TIGHT = [1.0, 1.01, 0.99, 1.0]  # ±1.5%
WIDE = [1.0, 1.2, 0.85, 1.1]  # ±25%


def _next(arms: dict[str, stats.Arm], spent: float = 100.0, budget: float = 300.0, **kw):
    groups = kw.pop("groups", [(BASE, CONTROL, OTHERS[0], OTHERS[1])])
    live = kw.pop("live", set(arms))
    settings = RunSettings(repeats=4, budget_s=budget, target_halfwidth=0.03)
    return pairs.next_set(groups, arms, live, settings, spent, [50.0] * 4, BASE.id)


def test_the_stopping_rule_adds_a_set_of_the_baseline_and_the_unresolved_arms():
    arms = {BASE.id: BASE_ARM, CONTROL.id: _arm(CONTROL.id, TIGHT)}
    arms |= {OTHERS[0].id: _arm(OTHERS[0].id, WIDE), OTHERS[1].id: _arm(OTHERS[1].id, TIGHT)}
    assert _next(arms) == (0, [BASE, OTHERS[0]])
    # the widest group first
    groups = [(BASE, OTHERS[1]), (BASE, OTHERS[0])]
    assert _next(arms, groups=groups) == (1, [BASE, OTHERS[0]])


def test_the_stopping_rule_stops_when_resolved_out_of_budget_or_nothing_can_run():
    resolved = {BASE.id: BASE_ARM, CONTROL.id: _arm(CONTROL.id, TIGHT)}
    resolved |= {v.id: _arm(v.id, TIGHT) for v in OTHERS[:2]}
    assert _next(resolved) is None  # every ratio within ±3%
    wide = resolved | {OTHERS[0].id: _arm(OTHERS[0].id, WIDE)}
    # the next set, half the arms of a 50-s set, would end at 275 s: within 280, not within 270
    assert _next(wide, spent=250.0, budget=280.0) == (0, [BASE, OTHERS[0]])
    assert _next(wide, spent=250.0, budget=270.0) is None
    assert _next(wide, budget=0.0) is None  # budget_s = 0: the minimum only
    assert _next(wide, live=set(wide) - {OTHERS[0].id}) is None  # its last job failed: not rerun
    assert _next({k: v for k, v in wide.items() if k != BASE.id}) is None  # no baseline measured


def test_a_resumed_run_keeps_the_groups_its_first_sets_recorded():
    def rec(group: int, round_: int, arms: list[Variant]) -> dict:
        pairing = {"group": group, "round": round_, "arms": [v.id for v in arms]}
        return {"kind": "variant", "variant_id": arms[0].id, "pairing": pairing}

    existing = [rec(0, 0, [BASE, CONTROL, OTHERS[2], OTHERS[0]]), rec(0, 1, [BASE, OTHERS[0]])]
    groups = resume.recover_groups(existing, [BASE, CONTROL], OTHERS, cap=4)
    assert groups[0] == (BASE, CONTROL, OTHERS[2], OTHERS[0])  # as recorded, not as today's cap
    assert [v.batch_size for g in groups[1:] for v in g] == [32, 32, 128, 512, 32, 32, 1024]
