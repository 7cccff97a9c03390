"""Each axis value against the baseline variant: ratios with 95% CIs and the verdicts on them."""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.plan.variant import DEFAULT_BACKEND
from bench.plan.variant import HEADLINE_AXES as AXES
from bench.records import first_line


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


# How the answer table words a validation strategy (docs/method.md describes each).
_VALIDATION_WORDS = {
    "per_epoch": "every epoch",
    "end_only": "once at the end",
    "split": "on a held-out split of the training images",
    "freq": "every few epochs (validation_freq)",
}
# Axes whose values read as they are ("mixed_bfloat16 instead of float32"); any other axis, a new
# one included, is named before its value ("batch 512 instead of 32").
_SELF_NAMED = ("precision", "device", "backend")


def question(entry: dict[str, Any]) -> str:
    """The answer table's question in words: 'batch 512 instead of 32', 'validate once at the end'."""
    axis, value, was = entry["axis"], entry["value"], entry["base"][entry["axis"]]
    if axis == "validation" and value in _VALIDATION_WORDS:
        return f"validate {_VALIDATION_WORDS[value]}" + (
            f" instead of {_VALIDATION_WORDS[was]}" if was != "per_epoch" else ""
        )
    name = "" if axis in _SELF_NAMED else ("batch" if axis == "batch_size" else axis) + " "
    return f"{name}{value} instead of {was}"


def _with_verdict(cell: str, verdict: str) -> str:
    """The figure and its verdict, the verdict in bold where it calls a difference real."""
    return f"{cell} **{verdict}**" if stats.is_difference(verdict) else f"{cell} {verdict}"


def answer_row(entry: dict[str, Any]) -> dict[str, str]:
    """One row of the report's first table: an axis value against the baseline, in words."""
    row, c = entry["row"], entry.get("comparison")
    out = {"what changed": question(entry)}
    step = "step time ÷ baseline's [95% CI]"
    if row["status"] != "ok":
        return out | {step: f"{row['status']}: {first_line(row['reason'], 60)}"}
    samples = f"{row['samples_per_s']:,.0f}"
    if c is None:
        return out | {step: f"{stats.NO_SPREAD}, no verdict", "samples/s": samples}
    return out | {
        step: _with_verdict(ratio_cell(c.step_ratio), entry["step_verdict"]),
        "samples/s": f"{samples} ({c.samples_ratio.point:.2f}×)",
        "Δ test accuracy pt [95% CI]": _with_verdict(
            delta_cell(c.accuracy_delta_pt), entry["accuracy_verdict"]
        ),
    }
