"""Each axis value against the baseline variant: ratios with 95% CIs and the verdicts on them."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bench import stats
from bench.plan.variant import DEFAULT_BACKEND
from bench.plan.variant import HEADLINE_AXES as AXES
from bench.records import first_line

if TYPE_CHECKING:  # aggregate.summarize_run calls judge_run, so no import of it at run time
    from bench.report.aggregate import Judgement, RunSummary

# Compared too, so a mirrored row never passes for a batch-size change, nor an XLA one for a backend.
_ALSO_EQUAL = ("epochs", "strategy", "replicas", "jit_compile", "control")


def _differs_only_in(row: dict[str, Any], base: dict[str, Any], axis: str) -> bool:
    return row[axis] != base[axis] and all(
        row.get(a) == base.get(a) for a in (*AXES, *_ALSO_EQUAL) if a != axis
    )


def judged(summary: RunSummary, base_id: str, row_id: str) -> Judgement:
    """Row against base: the comparison (None without spread) and a verdict per figure."""
    floor = summary.floor
    step_floor = floor.step if floor else 0.0
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
            c.train_epoch_ratio if c else None, step_floor, target=target
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


def axis_comparisons(summary: RunSummary) -> dict[str, list[dict[str, Any]]]:
    """axis → one entry per other value of that axis: the comparisons judged in summarize_run."""
    return summary.comparisons


def ratio_cell(ci: stats.Interval | None) -> str:
    """'1.24× [1.10–1.39]'."""
    return "–" if ci is None else f"{ci.point:.2f}× [{ci.lo:.2f}–{ci.hi:.2f}]"


def delta_cell(ci: stats.Interval | None) -> str:
    """'+0.51 [−0.20, +1.22]' (points)."""
    return "–" if ci is None else f"{ci.point:+.2f} [{ci.lo:+.2f}, {ci.hi:+.2f}]"


def describe(entry: dict[str, Any]) -> str:
    """'mixed_float16 vs float32 (bs32, per_epoch, cpu): step 1.24× [1.10–1.39] slower; …'."""
    axis, row, base = entry["axis"], entry["row"], entry["base"]
    context = ", ".join(
        str(base[a]) if a != "batch_size" else f"bs{base[a]}"
        for a in AXES
        if a != axis and not (a == "backend" and base[a] == DEFAULT_BACKEND)  # as in the id
    )
    head = f"{_label(axis, entry['value'])} vs {_label(axis, base[axis])} ({context})"
    if row["status"] != "ok":
        return f"{head}: {row['status']} — {first_line(row['reason'])}"
    c = entry["comparison"]
    if c is None:
        return f"{head}: {stats.NO_SPREAD}, no verdict"
    parts = [f"step {ratio_cell(c.step_ratio)}: {entry['step_verdict']}"]
    if axis == "batch_size":
        parts.append(f"throughput {ratio_cell(c.samples_ratio)}: {entry['throughput_verdict']}")
    parts.append(f"test accuracy {delta_cell(c.accuracy_delta_pt)} pt: {entry['accuracy_verdict']}")
    return f"{head}: " + "; ".join(parts)


def _label(axis: str, value: Any) -> str:
    return f"batch {value}" if axis == "batch_size" else str(value)
