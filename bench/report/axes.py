"""Each axis value against the baseline variant, as ratios a reader need not compute."""

from __future__ import annotations

from typing import Any

from bench.plan.variant import DEFAULT_BACKEND
from bench.plan.variant import HEADLINE_AXES as AXES
from bench.records import first_line

# Compared too, so a mirrored row never passes for a batch-size change, nor an XLA one for a backend.
_ALSO_EQUAL = ("epochs", "strategy", "replicas", "jit_compile")


def _differs_only_in(row: dict[str, Any], base: dict[str, Any], axis: str) -> bool:
    return row[axis] != base[axis] and all(
        row.get(a) == base.get(a) for a in (*AXES, *_ALSO_EQUAL) if a != axis
    )


def speed_phrase(ratio: float) -> str:
    """Step-time ratio (variant / baseline) in words: '1.24× slower', '3.10× faster'."""
    if round(ratio, 2) == 1:
        return "same (1.00×)"
    if ratio > 1:
        return f"{ratio:.2f}× slower"
    return f"{1 / ratio:.2f}× faster"


def axis_comparisons(
    rows: list[dict[str, Any]], baseline_id: str
) -> dict[str, list[dict[str, Any]]]:
    """axis → one entry per other value of that axis (everything else as in the baseline)."""
    base = next((r for r in rows if r["variant_id"] == baseline_id), None)
    if base is None or base["status"] != "ok":
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for axis in AXES:
        entries = []
        for row in rows:
            if not _differs_only_in(row, base, axis):
                continue
            entry: dict[str, Any] = {"axis": axis, "value": row[axis], "row": row, "base": base}
            if row["status"] == "ok":
                entry |= {
                    "step_ratio": row["step_ms"] / base["step_ms"],
                    "samples_ratio": row["samples_per_s"] / base["samples_per_s"],
                    "train_epoch_ratio": row["train_s_per_epoch"] / base["train_s_per_epoch"],
                    "accuracy_delta_pt": 100 * (row["test_accuracy"] - base["test_accuracy"]),
                }
            entries.append(entry)
        if entries:
            out[axis] = entries
    return out


def describe(entry: dict[str, Any]) -> str:
    """'mixed_float16 vs float32 (bs32, per_epoch, cpu): 1.24× slower step, −0.30 pt accuracy'."""
    axis, row, base = entry["axis"], entry["row"], entry["base"]
    context = ", ".join(
        str(base[a]) if a != "batch_size" else f"bs{base[a]}"
        for a in AXES
        if a != axis and not (a == "backend" and base[a] == DEFAULT_BACKEND)  # as in the id
    )
    head = f"{_label(axis, entry['value'])} vs {_label(axis, base[axis])} ({context})"
    if row["status"] != "ok":
        return f"{head}: {row['status']} — {first_line(row['reason'])}"
    delta = entry["accuracy_delta_pt"]
    return f"{head}: {speed_phrase(entry['step_ratio'])} step, {delta:+.2f} pt test accuracy"


def _label(axis: str, value: Any) -> str:
    return f"batch {value}" if axis == "batch_size" else str(value)
