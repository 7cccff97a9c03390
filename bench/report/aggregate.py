"""Records → one summary of a run: a row per variant, its arms, the noise floor and the probes.

A pure function of records. Every interval and verdict comes from ``bench.stats``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from bench import stats
from bench.plan.variant import HEADLINE_AXES as AXES
from bench.records import probe_ok, probe_records, variant_records
from bench.report.contention import SetUsage, set_usage
from bench.report.seeds import SeedRun, seed_runs
from mnist_models.spec import compute_dtype

# A probe's trials below this fraction of the best one mean the machine was busy at some point.
BUSY_PROBE_FRACTION = 0.8


@dataclass(frozen=True)
class ProbeSpread:
    """All matmul trials of one (device, dtype, size) over the run's probes."""

    best: float
    worst: float
    trials: int

    @property
    def spread(self) -> float:
        """1 − worst/best: 0 on a quiet machine."""
        return 1 - self.worst / self.best


# One variant against another: its stats.Comparison (None without spread) and a verdict per figure
# ("step_verdict", "throughput_verdict", "train_verdict", "accuracy_verdict"); see judged.
Judgement = dict[str, Any]


@dataclass(frozen=True)
class RunSummary:
    """Everything reports, findings, plots and compare need, derived once from a run's records.

    The renderers read this and nothing else of the records; the comparisons are judged here.
    """

    rows: list[dict[str, Any]]
    # Each variant's fields as recorded (every Variant field), by id: what axis tables compare.
    variants: dict[str, dict[str, Any]]
    arms: dict[str, stats.Arm]
    baseline: str | None
    control: str | None
    floor: stats.NoiseFloor | None
    peaks: dict[tuple[str, str], float]
    probes: dict[tuple[str, str, int], ProbeSpread] = field(default_factory=dict)
    # A step ratio resolves when its interval reaches no further than this (the run's setting).
    target: float = stats.DEFAULT_TARGET_HALFWIDTH
    # Whether the control trained with seeds of its own (older runs replayed the baseline's, so
    # their accuracy floor was 0 by construction); None without a control.
    control_own_seeds: bool | None = None
    # The first record's machine facts (what compare checks for a change of machine or versions).
    machine: dict[str, Any] = field(default_factory=dict)
    # Provenance: the first record's run section, the distinct commit sections (file order), the
    # first and last record's UTC time, and the first variant record's data section.
    run: dict[str, Any] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)
    times: tuple[str, str] | None = None
    data: dict[str, Any] | None = None
    warmup_steps: int | None = None
    # The first probe that measured (its GPUs and framework), and those that failed or hung.
    first_probe: dict[str, Any] | None = None
    failed_probes: list[dict[str, Any]] = field(default_factory=list)
    # How the paired sets ran (pairing_facts); None when no job ran in one.
    pairing: dict[str, Any] | None = None
    # Per variant, its first successful repeat's per-epoch figures (curves_of), and that first
    # successful record's model section with each precision's variable dtypes.
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: dict[str, Any] | None = None
    policies: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    # Judged once, in summarize_run (judge_run): each successful variant but the baseline
    # against it (by id), and axis → one entry per other value of that axis (axis_entries).
    versus_baseline: dict[str, Judgement] = field(default_factory=dict)
    comparisons: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Each paired set's CPU and steal over its blocks (empty for records without them).
    contention: list[SetUsage] = field(default_factory=list)
    # Every successful record's whole run by variant (bench.report.seeds), and the accuracies
    # the run times: target_accuracy, then the run's further targets.
    seeds: dict[str, list[SeedRun]] = field(default_factory=dict)
    target_accuracy: float | None = None
    targets: tuple[float, ...] = ()

    def row(self, variant_id: str | None) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["variant_id"] == variant_id), None)

    @property
    def busy_probes(self) -> dict[tuple[str, str, int], ProbeSpread]:
        """The probe sizes whose trials differed by more than BUSY_PROBE_FRACTION allows."""
        return {k: p for k, p in self.probes.items() if p.worst < BUSY_PROBE_FRACTION * p.best}


def _trials(probes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every matmul trial that measured, of the probe sections given."""
    return [t for probe in probes for t in probe["trials"] if t["flops_per_s"]]


def peak_flops(probes: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(device, dtype) → the best matmul FLOP/s of any trial in this run: the machine's peak."""
    peaks: dict[tuple[str, str], float] = {}
    for t in _trials(probes):
        key = (t["device"], t["dtype"])
        peaks[key] = max(peaks.get(key, 0.0), t["flops_per_s"])
    return peaks


def probe_spread(probes: list[dict[str, Any]]) -> dict[tuple[str, str, int], ProbeSpread]:
    """(device, dtype, size) → best, worst and count of its trials over the run."""
    by_key: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for t in _trials(probes):
        by_key[(t["device"], t["dtype"], t["n"])].append(t["flops_per_s"])
    return {k: ProbeSpread(max(v), min(v), len(v)) for k, v in sorted(by_key.items())}


def baseline_id(variants: list[dict[str, Any]]) -> str | None:
    """The run's baseline variant: as recorded, else the first variant record."""
    recorded = next((r["run"].get("baseline") for r in variants if r["run"].get("baseline")), None)
    return recorded or (variants[0]["variant_id"] if variants else None)


def _groups(variants: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in variants:
        groups[rec["variant_id"]].append(rec)
    return dict(groups)


def summarize_run(records: list[dict[str, Any]]) -> RunSummary:
    """The run's rows, arms, baseline, A/A control and noise floor, machine probes, provenance
    and per-variant details, and the judged comparisons against the baseline (computed here, once)."""
    variants = variant_records(records)
    probes = probe_records(records)
    measured = [p["probe"] for p in probes if probe_ok(p)]
    groups = _groups(variants)
    peaks = peak_flops(measured)
    arms = {
        vid: stats.arm(vid, ok)
        for vid, recs in groups.items()
        if (ok := [r for r in recs if r["status"] == "ok"])
    }
    rows = [_row(vid, recs, arms.get(vid), peaks) for vid, recs in groups.items()]
    baseline = baseline_id(variants)
    control = next(
        (r["variant_id"] for r in rows if r["control"] and baseline and r["status"] == "ok"), None
    )
    floor = None
    if control and baseline in arms:
        floor = stats.noise_floor(arms[baseline], arms[control])
    own = None
    if control and baseline:
        seeds = {vid: {r.get("seed") for r in groups.get(vid, [])} for vid in (baseline, control)}
        own = not seeds[baseline] & seeds[control]
    times = sorted(r["created_utc"] for r in records)
    summary = RunSummary(
        rows,
        {vid: recs[0]["variant"] for vid, recs in groups.items()},
        arms,
        baseline,
        control,
        floor,
        peaks,
        probe_spread(measured),
        variants[0]["settings"]["target_halfwidth"] if variants else stats.DEFAULT_TARGET_HALFWIDTH,
        own,
        machine=records[0]["machine"] if records else {},
        run=records[0]["run"] if records else {},
        commits=list(
            {json.dumps(r["commit"], sort_keys=True): r["commit"] for r in records}.values()
        ),
        times=(times[0], times[-1]) if times else None,
        data=next((r["data"] for r in variants if r.get("data")), None),
        warmup_steps=variants[0]["settings"]["warmup_steps"] if variants else None,
        first_probe=measured[0] if measured else None,
        failed_probes=[p["probe"] for p in probes if not probe_ok(p)],
        pairing=pairing_facts(variants),
        contention=set_usage(variants),
        seeds=seed_runs(variants),
        target_accuracy=variants[0]["settings"]["target_accuracy"] if variants else None,
        targets=tuple(variants[0]["settings"].get("targets", ())) if variants else (),
        **_model_and_curves(variants),
    )
    return judge_run(summary)


def pairing_facts(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the run's paired sets ran: how many, in how many groups, the minimum per group, the
    extra sets, the block lengths, the budget and the target; None when no job ran in one."""
    paired = [r for r in variants if r.get("pairing")]
    if not paired:
        return None
    sets = {r["pairing"]["set"]: r["pairing"] for r in paired}
    settings = paired[0]["settings"]
    return {
        "sets": len(sets),
        "groups": len({p["group"] for p in sets.values()}),
        "extra": sum(1 for p in sets.values() if p.get("extra")),
        "minimum": 1 + max((p["round"] for p in sets.values() if not p.get("extra")), default=-1),
        "blocks_s": sorted({p["block_s"] for p in sets.values()}),
        "budget_s": settings.get("budget_s", 0),
        "target": settings["target_halfwidth"],
    }


def _model_and_curves(variants: list[dict[str, Any]]) -> dict[str, Any]:
    """The first successful record's model section, each precision's variable dtypes, and each
    variant's first successful repeat's per-epoch figures."""
    ok = [r for r in variants if r["status"] == "ok"]
    curves: dict[str, dict[str, Any]] = {}
    for rec in ok:
        if rec["variant_id"] not in curves:
            curves[rec["variant_id"]] = {
                "repeat": rec["repeat"],
                **{k: rec["accuracy"][k] for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
                **{k: rec["timing"][k] for k in ("train_s_per_epoch", "val_s_per_epoch")},
                "target_accuracy": rec["settings"]["target_accuracy"],
            }
    return {
        "model": ok[0]["model"] if ok else None,
        "policies": sorted(
            {(r["variant"]["precision"], tuple(r["model"]["param_dtypes"])) for r in ok}
        ),
        "curves": curves,
    }


def _row(
    variant_id: str,
    recs: list[dict[str, Any]],
    arm: stats.Arm | None,
    peaks: dict[tuple[str, str], float],
) -> dict[str, Any]:
    """A variant's every field (as recorded: an axis added to Variant arrives here by itself), its
    status and, where it measured, its figures."""
    v = recs[0]["variant"]
    ok = [r for r in recs if r["status"] == "ok"]
    row: dict[str, Any] = {
        "variant_id": variant_id,
        **v,
        # batch_size is the global batch; a tf.distribute strategy splits it over replicas.
        "replicas": 1 if v["strategy"] == "default" else v["replicas"],
        "status": "ok" if ok else recs[-1]["status"],
        "reason": None if ok else recs[-1]["reason"],
        "repeats_ok": len(ok),
        "repeats": len(recs),
    }
    if arm is not None:
        section = ok[0]["backend"]
        row |= {
            "backend_version": section["version"],
            "jit_requested": section["jit_compile"]["requested"],
            "jit_resolved": section["jit_compile"]["resolved"],
            "execution": section["execution"],
        }
        row.update(_summarise_ok(ok, arm))
        peak = peaks.get((v["device"], compute_dtype(v["precision"])))
        row["peak_flops_per_s"] = peak
        row["pct_of_peak"] = 100 * row["achieved_flops_per_s"] / peak if peak else None
    return row


def _summarise_ok(ok: list[dict[str, Any]], arm: stats.Arm) -> dict[str, Any]:
    derived = [stats.repeat_stats(r) for r in ok]

    def med(values: Any) -> float | None:
        present = [x for x in values if x is not None]
        return stats.median(present) if present else None

    medians = [d["step_ms"]["median"] for d in derived]
    lo, hi = (min(medians), max(medians)) if len(medians) > 1 else (None, None)
    ci = stats.step_interval(arm)
    step_ms = arm.step_ms
    batch = ok[0]["variant"]["batch_size"]
    first = ok[0]
    accuracy = [r["accuracy"]["test_accuracy"] for r in ok]
    return {
        "step_ms": step_ms,
        "step_ms_ci_lo": ci.lo if ci else None,
        "step_ms_ci_hi": ci.hi if ci else None,
        "step_ms_min": lo,
        "step_ms_max": hi,
        "step_ms_cv": stats.cv(medians),
        "step_ms_p10": med(d["step_ms"]["p10"] for d in derived),
        "step_ms_p90": med(d["step_ms"]["p90"] for d in derived),
        "first_step_ms": med(d["first_step_ms"] for d in derived),
        "wall_step_ms": med(d["wall_step_ms"] for d in derived),
        "long_steps": med(d["long_steps"] for d in derived),
        "long_steps_s": med(d["long_steps_s"] for d in derived),
        "steps_per_epoch": first["timing"]["steps_per_epoch"],
        "samples_per_s": 1000 * batch / step_ms,
        "train_s_per_epoch": med(stats.median(r["timing"]["train_s_per_epoch"]) for r in ok),
        "val_s_per_epoch": med(
            sum(r["timing"]["val_s_per_epoch"]) / len(r["timing"]["val_s_per_epoch"]) for r in ok
        ),
        "final_eval_s": med(r["timing"]["final_eval_s"] for r in ok),
        "test_accuracy": sum(accuracy) / len(accuracy),
        "test_accuracy_sd": stats.stdev(accuracy),
        "target_accuracy": derived[0]["target_accuracy"],
        "time_to_target_s": med(d["time_to_target_s"] for d in derived),
        "reached_target": sum(d["time_to_target_s"] is not None for d in derived),
        "train_images": first["accuracy"]["train_images"],
        "param_bytes": first["model"]["param_bytes"],
        "optimizer_bytes": first["model"]["optimizer_bytes"],
        "activation_bytes_est": first["model"]["activation_bytes_per_batch_est"],
        "peak_rss_bytes": med(r["memory"]["peak_rss_bytes"] for r in ok),
        "gpu_peak_bytes": med(r["memory"]["gpu_peak_bytes"] for r in ok),
        "flops_per_step": first["model"]["flops_per_step"],
        "achieved_flops_per_s": first["model"]["flops_per_step"] / (step_ms / 1000),
    }


def _differs_only_in(config: dict[str, Any], base: dict[str, Any], axis: str) -> bool:
    """Whether a variant's fields are the baseline's but for `axis`: every field is compared, so a
    mirrored variant never passes for a batch-size change, nor an XLA one for a backend."""
    return config.get(axis) != base.get(axis) and all(
        config.get(f) == base.get(f) for f in {*config, *base} if f != axis
    )


def judged(summary: RunSummary, base_id: str, row_id: str) -> Judgement:
    """Row against base: the comparison (None without spread) and a verdict per figure.

    The target applies to the three time ratios; the floors: the A/A step difference to step and
    samples/s ratios (samples/s is the batch ratio ÷ the step ratio), the A/A s/epoch difference to
    s/epoch ratios, the A/A accuracy difference to accuracy (markdown's verdict line says so).
    """
    floor = summary.floor
    step_floor = floor.step if floor else 0.0
    epoch_floor = floor.train_epoch if floor else 0.0
    acc_floor = floor.accuracy_pt if floor else 0.0
    c = stats.compare_arms(summary.arms[base_id], summary.arms[row_id])
    target = summary.target
    return {
        "comparison": c,
        "step_verdict": stats.ratio_verdict(c.step_ratio if c else None, step_floor, target=target),
        "throughput_verdict": stats.ratio_verdict(
            c.samples_ratio if c else None,
            step_floor,
            target=target,
            above="higher throughput",
            below="lower throughput",
        ),
        "train_verdict": stats.ratio_verdict(
            c.train_epoch_ratio if c else None, epoch_floor, target=target
        ),
        "accuracy_verdict": stats.difference_verdict(c.accuracy_delta_pt if c else None, acc_floor),
    }


def judge_run(summary: RunSummary) -> RunSummary:
    """The summary with its judgements: each successful variant but the baseline against the
    baseline, and those again by axis. The one place a run's comparisons are computed."""
    base = summary.row(summary.baseline)
    if base is None or base["status"] != "ok":
        return summary
    versus = {
        row["variant_id"]: judged(summary, base["variant_id"], row["variant_id"])
        for row in summary.rows
        if row["status"] == "ok" and row["variant_id"] != base["variant_id"]
    }
    return replace(summary, versus_baseline=versus, comparisons=axis_entries(summary, versus))


# Fields that tell arms apart without being a setting a reader compares.
NOT_AXES = ("control", "seed")


def _axes(summary: RunSummary) -> list[str]:
    """The headline axes, then any other variant field the run varies (e.g. learning_rate), in
    the order of the baseline's fields."""
    base = summary.variants.get(summary.baseline or "", {})
    varied = [
        k
        for k in base
        if k not in AXES
        and k not in NOT_AXES
        and any(v.get(k) != base[k] for v in summary.variants.values())
    ]
    return [*AXES, *varied]


def axis_entries(
    summary: RunSummary, versus: dict[str, Judgement]
) -> dict[str, list[dict[str, Any]]]:
    """axis → one entry per other value of that axis (everything else as in the baseline), with
    its judgement against the baseline from `versus` where it ran."""
    base = summary.row(summary.baseline)
    if base is None or base["status"] != "ok":
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for axis in _axes(summary):
        entries = []
        for row in summary.rows:
            config = summary.variants[row["variant_id"]]
            if not _differs_only_in(config, summary.variants[base["variant_id"]], axis):
                continue
            entry: dict[str, Any] = {"axis": axis, "value": row[axis], "row": row, "base": base}
            if row["status"] == "ok":
                entry |= versus[row["variant_id"]]
            entries.append(entry)
        if entries:
            out[axis] = entries
    return out
