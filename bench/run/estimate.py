"""How long a run is expected to take on the 2-core dev machine, from its plan alone (``run --list``).

As ``runner.PairedRun`` runs it: the single-process arms are dealt into
groups (``pairs.split_arms``, ``grouping.group_arms`` under the worker cap), and a set is one fresh
process per arm of its group. The arms start together and share the cores while they import
TensorFlow, load the data and build the model, so a set's start-up takes about arms ×
STARTUP_S_PER_ARM; then they take turns, one arm training at a time, so their turns add up, each
TURN_S_PER_COMPUTE_S × its training and evaluation seconds (``shard.compute_s``, the job cost
model's). Every group runs `repeats` sets; then the stopping rule (``pairs.next_set``) adds sets of
the unresolved arms while the sets' seconds stay within `budget_s`. The estimate assumes every arm
stays unresolved, the most the rule can add: whole-group sets while one more fits the budget.
multi_worker arms run one job after another afterwards (``shard.expected_cost_s``), GPU arms are
skipped on a CPU-only machine, and the machine is probed before, between and after.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench import records
from bench.plan.grouping import group_arms, runs_in_one_process
from bench.plan.settings import RunSettings
from bench.plan.shard import backend_start_s, compute_s, expected_cost_s
from bench.plan.variant import Variant
from bench.run import pairs

# From two paired runs on the 2-core dev machine, one of 1-epoch arms (reports/reference) and one of
# 30-epoch arms (reports/seed), as `calibrate` derives them:
#   python -c "from bench import records; from bench.run.estimate import calibrate;
#              print(calibrate(records.read_records('reports/reference/results.jsonl')
#                              + records.read_records('reports/seed/results.jsonl')))"
# tests/test_estimate.py checks that they still agree with those files.
STARTUP_S_PER_ARM = 3.16  # a set's slowest start-up (its arms side by side) ÷ its arms
TURN_S_PER_COMPUTE_S = 1.62  # a set's turns grow by this per second of its arms' compute_s ...
TURN_S_PER_ARM = 2.39  # ... plus this per arm (a turn's fixed costs: tracing, the first epoch)
PROBE_S = 6.5  # a between or end machine probe (matmul trials in a fresh process)
_GAP_PHASES = ("between", "end")


@dataclass(frozen=True)
class Estimate:
    """A run's expected seconds, and the parts they come from."""

    total_s: float
    groups: tuple[int, ...] = ()  # arms of each group's set
    set_s: tuple[float, ...] = ()  # one set of each group, start-ups and turns
    startup_s: tuple[float, ...] = ()  # the start-up part of each group's set
    minimum_sets: int = 0  # repeats × groups
    extra_sets: int = 0  # whole-group sets the stopping rule can add within budget_s
    sets_s: float = 0.0  # all those sets
    jobs: int = 0  # multi_worker jobs, run one after another
    jobs_s: float = 0.0
    probes_s: float = 0.0
    skipped_gpu: int = 0  # GPU variants a CPU-only machine skips (not counted)


def set_seconds(arms: Sequence[Variant]) -> tuple[float, float]:
    """(a set's expected seconds, its start-up part) for these arms side by side."""
    startup = STARTUP_S_PER_ARM * len(arms)
    turns = sum(
        TURN_S_PER_COMPUTE_S * compute_s(v) + TURN_S_PER_ARM + backend_start_s(v) for v in arms
    )
    return startup + turns, startup


def sets_until_budget(set_s: Sequence[float], extendable: Sequence[bool], repeats: int,
                      budget_s: float) -> tuple[float, int]:  # fmt: skip
    """(all sets' seconds, extra sets): `repeats` sets of every group, then whole-group sets in
    turn while one more keeps the sets' seconds within budget_s (``pairs.next_set``'s check)."""
    spent, extra = repeats * sum(set_s), 0
    candidates = [g for g, ok in enumerate(extendable) if ok]
    while budget_s > 0 and candidates:
        g = candidates[extra % len(candidates)]
        if spent + set_s[g] > budget_s:
            break
        spent, extra = spent + set_s[g], extra + 1
    return spent, extra


def estimate(
    variants: Sequence[Variant], settings: RunSettings, baseline_id: str | None, cap: int
) -> Estimate:
    """The expected seconds of running `variants` with `settings` on the 2-core dev machine."""
    gpu = [v for v in variants if v.device == "gpu"]
    cpu = [v for v in variants if v.device != "gpu"]
    probes = PROBE_S * (2 + (settings.repeats > 1))  # start, between (with 2+ rounds), end
    separate = [v for v in cpu if not runs_in_one_process(v)]
    shared, others = pairs.split_arms([v for v in cpu if runs_in_one_process(v)], baseline_id)
    groups = group_arms(shared, others, cap)
    timed = [set_seconds(g) for g in groups]
    set_s = [s for s, _ in timed]
    # A group of the baseline alone has no ratio to resolve: the stopping rule never extends it.
    extendable = [any(v.id != baseline_id for v in g) for g in groups]
    sets_s, extra = sets_until_budget(set_s, extendable, settings.repeats, settings.budget_s)
    jobs_s = sum(expected_cost_s(v, settings.repeats) for v in separate)
    return Estimate(
        sets_s + jobs_s + probes,
        groups=tuple(len(g) for g in groups),
        set_s=tuple(set_s),
        startup_s=tuple(s for _, s in timed),
        minimum_sets=settings.repeats * len(groups),
        extra_sets=extra,
        sets_s=sets_s,
        jobs=len(separate) * settings.repeats,
        jobs_s=jobs_s,
        probes_s=probes,
        skipped_gpu=len(gpu),
    )


def calibrate(recs: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The constants above, from paired runs' records: per-arm start-up; the turns' seconds as a
    least-squares line in the arms' compute_s plus a fixed part per arm (runs of 1 epoch and of
    many give both); and the probes' seconds (each between/end probe's time after the record
    before it)."""
    sets: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records.variant_records(list(recs)):
        if r.get("pairing"):
            sets.setdefault((r["run"]["id"], r["pairing"]["set"]), []).append(r)
    startups = [max(r["pairing"]["startup_s"] for r in arms) for arms in sets.values()]
    turns = [  # the last arm's set_s: the whole set's
        max(r["pairing"]["set_s"] for r in arms) - s
        for arms, s in zip(sets.values(), startups, strict=True)
    ]
    compute = [
        sum(compute_s(Variant.from_dict(r["variant"])) for r in arms) for arms in sets.values()
    ]
    per_compute, per_arm = _line(compute, [len(a) for a in sets.values()], turns)
    gaps = [
        (_created(r) - _created(before)).total_seconds()
        for before, r in itertools.pairwise(recs)
        if r["kind"] == "probe" and r["probe"].get("phase") in _GAP_PHASES
    ]
    return {
        "startup_s_per_arm": sum(startups) / sum(len(arms) for arms in sets.values()),
        "turn_s_per_compute_s": per_compute,
        "turn_s_per_arm": per_arm,
        "probe_s": statistics.median(gaps) if gaps else float("nan"),
    }


def _line(x: Sequence[float], n: Sequence[int], y: Sequence[float]) -> tuple[float, float]:
    """(a, b) minimising Σ (y − a·x − b·n)²; with one kind of set only, b = 0 and a = Σy ÷ Σx."""
    sxx, snn = sum(v * v for v in x), sum(v * v for v in n)
    sxn = sum(a * b for a, b in zip(x, n, strict=True))
    sxy, sny = (sum(a * b for a, b in zip(v, y, strict=True)) for v in (x, n))
    det = sxx * snn - sxn * sxn
    if abs(det) < 1e-9 * sxx * snn:
        return sum(y) / sum(x), 0.0
    return (sxy * snn - sny * sxn) / det, (sny * sxx - sxy * sxn) / det


def _created(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["created_utc"])


def describe(e: Estimate, settings: RunSettings) -> list[str]:
    """The estimate's parts, one line each, as ``run --list`` prints them."""
    lines = []
    if e.groups:
        sizes = "/".join(str(n) for n in e.groups)
        per_set = ", ".join(
            f"~{s:.0f} s ({st:.0f} s of start-ups side by side, {s - st:.0f} s of turns)"
            for s, st in zip(e.set_s, e.startup_s, strict=True)
        )
        lines.append(f"paired sets of {sizes} arms, a set {per_set}")
        more = (
            f"then up to {e.extra_sets} more until budget_s = {settings.budget_s:g} s of sets"
            if settings.budget_s > 0
            else "no more (budget_s = 0)"
        )
        lines.append(
            f"{e.minimum_sets} sets for repeats = {settings.repeats}, {more}: ~{e.sets_s:.0f} s"
        )
    if e.jobs:
        lines.append(f"{e.jobs} multi_worker jobs one after another: ~{e.jobs_s:.0f} s")
    lines.append(f"machine probes: ~{e.probes_s:.0f} s")
    if e.skipped_gpu:
        lines.append(
            f"{e.skipped_gpu} GPU variant(s) not counted: a machine without a GPU skips them"
        )
    return lines
