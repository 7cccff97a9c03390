"""Two runs side by side: matching variants, ratios, and which differences exceed the noise."""

from __future__ import annotations

from typing import Any

from bench.report import aggregate
from bench.report.tables import markdown_table, step_cell


def _interval(row: dict[str, Any]) -> tuple[float, float] | None:
    """The range of a variant's repeat medians, or None with a single repeat."""
    if row.get("step_ms_min") is None:
        return None
    return row["step_ms_min"], row["step_ms_max"]


def verdict(a: dict[str, Any], b: dict[str, Any]) -> str:
    """'slower'/'faster' when the repeat ranges do not overlap, else 'within noise'.

    With one repeat on either side there is no spread to judge by, and the verdict says so.
    """
    ia, ib = _interval(a), _interval(b)
    if ia is None or ib is None:
        return "no spread (1 repeat)"
    if ib[0] > ia[1]:
        return "**slower**"
    if ib[1] < ia[0]:
        return "**faster**"
    return "within noise"


def compare_rows(
    records_a: list[dict[str, Any]], records_b: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One entry per variant id present in either run (A's order first)."""
    rows_a = {r["variant_id"]: r for r in aggregate.variant_rows(records_a)}
    rows_b = {r["variant_id"]: r for r in aggregate.variant_rows(records_b)}
    out = []
    for vid in [*rows_a, *(v for v in rows_b if v not in rows_a)]:
        a, b = rows_a.get(vid), rows_b.get(vid)
        entry: dict[str, Any] = {"variant_id": vid, "a": a, "b": b}
        if a and b and a["status"] == b["status"] == "ok":
            entry |= {
                "step_ratio": b["step_ms"] / a["step_ms"],
                "accuracy_delta_pt": 100 * (b["test_accuracy"] - a["test_accuracy"]),
                "verdict": verdict(a, b),
            }
        out.append(entry)
    return out


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "absent"
    if row["status"] != "ok":
        return row["status"]
    return step_cell(row)


def render_compare(
    records_a: list[dict[str, Any]], records_b: list[dict[str, Any]], name_a: str, name_b: str
) -> str:
    """Markdown: variant, A and B median step [repeat range], B÷A, Δ accuracy, verdict."""
    table = []
    for e in compare_rows(records_a, records_b):
        ratio = e.get("step_ratio")
        table.append(
            {
                "variant": e["variant_id"],
                f"A step ms [range] ({name_a})": _cell(e["a"]),
                f"B step ms [range] ({name_b})": _cell(e["b"]),
                "B ÷ A step": "–" if ratio is None else f"{ratio:.3f}×",
                "Δ test acc (pt)": "–" if ratio is None else f"{e['accuracy_delta_pt']:+.2f}",
                "verdict": e.get("verdict", "not comparable"),
            }
        )
    intro = (
        f"# Comparison\n\nA = `{name_a}`, B = `{name_b}`. A difference is flagged only when the ranges of "
        "the repeat medians do not overlap; 'within noise' means they do.\n\n"
    )
    return intro + markdown_table(table) + "\n"
