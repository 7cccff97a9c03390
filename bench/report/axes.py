"""Each axis value against the baseline variant: ratios with 95% CIs and the verdicts on them."""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.plan.variant import DEFAULT_BACKEND
from bench.plan.variant import HEADLINE_AXES as AXES
from bench.records import first_line
from bench.report.aggregate import RunSummary


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
