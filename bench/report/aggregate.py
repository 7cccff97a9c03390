"""Records → one summary of a run: a row per variant, its arms, the noise floor and the probes.

A pure function of records. Every interval and verdict comes from ``bench.stats``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from bench import stats
from bench.plan.variant import HEADLINE_AXES as AXES
from bench.records import probe_ok, probe_records, variant_records
from bench.report.contention import SetUsage, set_usage
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

    The renderers read this and nothing else of the records but the run's provenance (first
    record, time span): each variant's records are here, and so are the judged comparisons.
    """

    rows: list[dict[str, Any]]
    arms: dict[str, stats.Arm]
    baseline: str | None
    control: str | None
    floor: stats.NoiseFloor | None
    peaks: dict[tuple[str, str], float]
    probes: dict[tuple[str, str, int], ProbeSpread] = field(default_factory=dict)
    # A step ratio resolves when its interval reaches no further than this (the run's setting).
    target: float = stats.DEFAULT_TARGET_HALFWIDTH
    # Whether the control trained with seeds of its own (runs before 2026-12-02 replayed the
    # baseline's, so their accuracy floor was 0 by construction); None without a control.
    control_own_seeds: bool | None = None
    # The first record's machine facts (what compare checks for a change of machine or versions).
    machine: dict[str, Any] = field(default_factory=dict)
    # The variant records in file order, each variant's (first-seen order), the probe records
    # that measured, and those whose process failed or hung (their point has no peak figure).
    variant_records: list[dict[str, Any]] = field(default_factory=list)
    records_by_variant: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    probe_records: list[dict[str, Any]] = field(default_factory=list)
    failed_probes: list[dict[str, Any]] = field(default_factory=list)
    # Judged once, in summarize_run (judge_run): each successful variant but the baseline
    # against it (by id), and axis → one entry per other value of that axis (axis_entries).
    versus_baseline: dict[str, Judgement] = field(default_factory=dict)
    comparisons: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Each paired set's CPU and steal over its blocks (empty for records without them).
    contention: list[SetUsage] = field(default_factory=list)

    def row(self, variant_id: str | None) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["variant_id"] == variant_id), None)

    @property
    def busy_probes(self) -> dict[tuple[str, str, int], ProbeSpread]:
        """The probe sizes whose trials differed by more than BUSY_PROBE_FRACTION allows."""
        return {k: p for k, p in self.probes.items() if p.worst < BUSY_PROBE_FRACTION * p.best}


def probe_trials(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every matmul trial of every probe that measured; one from before trials gives its bests."""
    trials = []
    for rec in filter(probe_ok, probe_records(records)):
        probe = rec["probe"]
        if "trials" in probe:
            trials += [t for t in probe["trials"] if t["flops_per_s"]]
            continue
        for device, by_dtype in probe["peak_flops_per_s"].items():
            trials += [
                {"device": device, "dtype": dt, "n": probe["matmul_n"], "flops_per_s": v}
                for dt, v in by_dtype.items()
                if v
            ]
    return trials


def peak_flops(records: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(device, dtype) → the best matmul FLOP/s of any trial in this run: the machine's peak."""
    peaks: dict[tuple[str, str], float] = {}
    for t in probe_trials(records):
        key = (t["device"], t["dtype"])
        peaks[key] = max(peaks.get(key, 0.0), t["flops_per_s"])
    return peaks


def probe_spread(records: list[dict[str, Any]]) -> dict[tuple[str, str, int], ProbeSpread]:
    """(device, dtype, size) → best, worst and count of its trials over the run."""
    by_key: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for t in probe_trials(records):
        by_key[(t["device"], t["dtype"], t["n"])].append(t["flops_per_s"])
    return {k: ProbeSpread(max(v), min(v), len(v)) for k, v in sorted(by_key.items())}


def own_peak_rss(rec: dict[str, Any]) -> int | None:
    """The job process's own peak RSS; None for records without ``memory.peak_rss_source``.

    Those (made before 2026-11-26) read ru_maxrss, which on Linux can hold the runner's RSS: every
    variant of that day's reference showed the same 1,638 MiB (``bench.measure.memory``).
    """
    memory = rec["memory"]
    return memory["peak_rss_bytes"] if memory.get("peak_rss_source") else None


def baseline_id(records: list[dict[str, Any]]) -> str | None:
    """The run's baseline variant: as recorded, else the first variant record."""
    variants = variant_records(records)
    recorded = next((r["run"].get("baseline") for r in variants if r["run"].get("baseline")), None)
    return recorded or (variants[0]["variant_id"] if variants else None)


# Records written before the backend axis ran on TensorFlow and did not record what jit_compile
# resolved to; these describe them.
LEGACY_BACKEND = "tensorflow"
LEGACY_EXECUTION = {False: "tf.function graph, no XLA", True: "tf.function graph, XLA requested"}


def backend_facts(rec: dict[str, Any]) -> dict[str, Any]:
    """Backend, its version, jit_compile as asked and as resolved, and what ran, for one record.

    From the record's 'backend' section; records from before it existed ran on TensorFlow.
    """
    section = rec.get("backend")
    requested = rec["variant"].get("jit_compile", False)
    if section:
        return {
            "backend": section["name"],
            "backend_version": section["version"],
            "jit_requested": section["jit_compile"]["requested"],
            "jit_resolved": section["jit_compile"]["resolved"],
            "execution": section["execution"],
        }
    return {
        "backend": rec["variant"].get("backend", LEGACY_BACKEND),
        "backend_version": rec["machine"]["versions"].get("tensorflow"),
        "jit_requested": requested,
        "jit_resolved": None,  # not recorded
        "execution": LEGACY_EXECUTION[requested is True],
    }


def _groups(variants: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in variants:
        groups[rec["variant_id"]].append(rec)
    return dict(groups)


def summarize_run(records: list[dict[str, Any]]) -> RunSummary:
    """The run's rows, arms, baseline, A/A control and noise floor, machine probes, each variant's
    records, and the judged comparisons against the baseline (computed here, once)."""
    variants = variant_records(records)
    groups = _groups(variants)
    peaks = peak_flops(records)
    arms = {
        vid: stats.arm(vid, ok)
        for vid, recs in groups.items()
        if (ok := [r for r in recs if r["status"] == "ok"])
    }
    rows = [_row(vid, recs, arms.get(vid), peaks) for vid, recs in groups.items()]
    baseline = baseline_id(records)
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
    summary = RunSummary(
        rows,
        arms,
        baseline,
        control,
        floor,
        peaks,
        probe_spread(records),
        target_of(records),
        own,
        machine=records[0]["machine"] if records else {},
        variant_records=variants,
        records_by_variant=groups,
        probe_records=[p for p in probe_records(records) if probe_ok(p)],
        failed_probes=[p for p in probe_records(records) if not probe_ok(p)],
        contention=set_usage(variants),
    )
    return judge_run(summary)


def target_of(records: list[dict[str, Any]]) -> float:
    """The run's step-ratio target half-width (records from before the setting: the default)."""
    return next(
        (
            r["settings"]["target_halfwidth"]
            for r in variant_records(records)
            if "target_halfwidth" in r["settings"]
        ),
        stats.DEFAULT_TARGET_HALFWIDTH,
    )


def _row(
    variant_id: str,
    recs: list[dict[str, Any]],
    arm: stats.Arm | None,
    peaks: dict[tuple[str, str], float],
) -> dict[str, Any]:
    v = recs[0]["variant"]
    ok = [r for r in recs if r["status"] == "ok"]
    row: dict[str, Any] = {
        "variant_id": variant_id,
        **{k: v[k] for k in ("batch_size", "validation", "precision", "device", "epochs")},
        # batch_size is the global batch; a tf.distribute strategy splits it over replicas.
        "strategy": v.get("strategy", "default"),
        "replicas": 1 if v.get("strategy", "default") == "default" else v["replicas"],
        "backend": v.get("backend", LEGACY_BACKEND),
        "jit_compile": v.get("jit_compile", False),
        "control": v.get("control", False),
        "status": "ok" if ok else recs[-1]["status"],
        "reason": None if ok else recs[-1]["reason"],
        "repeats_ok": len(ok),
        "repeats": len(recs),
    }
    if arm is not None:
        row.update(backend_facts(ok[0]))
        row.update(_summarise_ok(ok, arm))
        peak = peaks.get((v["device"], compute_dtype(v["precision"])))
        row["peak_flops_per_s"] = peak
        row["pct_of_peak"] = 100 * row["achieved_flops_per_s"] / peak if peak else None
    return row


def _spread(values: list[float]) -> tuple[float | None, float | None]:
    return (min(values), max(values)) if len(values) > 1 else (None, None)


def _summarise_ok(ok: list[dict[str, Any]], arm: stats.Arm) -> dict[str, Any]:
    derived = [stats.repeat_stats(r) for r in ok]

    def med(values: Any) -> float | None:
        present = [x for x in values if x is not None]
        return stats.median(present) if present else None

    medians = [d["step_ms"]["median"] for d in derived]
    lo, hi = _spread(medians)
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
        "peak_rss_bytes": med(own_peak_rss(r) for r in ok),
        "gpu_peak_bytes": med(r["memory"]["gpu_peak_bytes"] for r in ok),
        "flops_per_step": first["model"]["flops_per_step"],
        "achieved_flops_per_s": first["model"]["flops_per_step"] / (step_ms / 1000),
    }


def variant_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant (first-seen order), for tables and exports."""
    return summarize_run(records).rows


# Compared too, so a mirrored row never passes for a batch-size change, nor an XLA one for a backend.
_ALSO_EQUAL = ("epochs", "strategy", "replicas", "jit_compile", "control")


def _differs_only_in(row: dict[str, Any], base: dict[str, Any], axis: str) -> bool:
    return row[axis] != base[axis] and all(
        row.get(a) == base.get(a) for a in (*AXES, *_ALSO_EQUAL) if a != axis
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


def axis_entries(
    summary: RunSummary, versus: dict[str, Judgement]
) -> dict[str, list[dict[str, Any]]]:
    """axis → one entry per other value of that axis (everything else as in the baseline), with
    its judgement against the baseline from `versus` where it ran."""
    base = summary.row(summary.baseline)
    if base is None or base["status"] != "ok":
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for axis in AXES:
        entries = []
        for row in summary.rows:
            if not _differs_only_in(row, base, axis):
                continue
            entry: dict[str, Any] = {"axis": axis, "value": row[axis], "row": row, "base": base}
            if row["status"] == "ok":
                entry |= versus[row["variant_id"]]
            entries.append(entry)
        if entries:
            out[axis] = entries
    return out
