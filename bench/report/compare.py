"""Two runs side by side: shared variants, ratios B ÷ A with 95% CIs, and the same verdicts.

Ratios across runs carry whatever changed between them (code, versions, machine, load), so the
header warns when machine or versions differ, or when the runs' own probes of the machine (peak
trials, A/A control) disagree beyond their spread.
"""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.report.aggregate import RunSummary, summarize_run
from bench.report.axes import delta_cell, ratio_cell
from bench.report.tables import markdown_table, step_cell


def _floor(a: RunSummary, b: RunSummary) -> tuple[float, float]:
    """The larger of the two runs' A/A differences: what re-running alone already moves."""
    floors = [s.floor for s in (a, b) if s.floor is not None]
    return (
        max((f.step for f in floors), default=0.0),
        max((f.accuracy_pt for f in floors), default=0.0),
    )


def compare_rows(a: RunSummary, b: RunSummary) -> list[dict[str, Any]]:
    """One entry per variant id present in either run (A's order first)."""
    step_floor, acc_floor = _floor(a, b)
    rows_a = {r["variant_id"]: r for r in a.rows}
    rows_b = {r["variant_id"]: r for r in b.rows}
    out = []
    for vid in [*rows_a, *(v for v in rows_b if v not in rows_a)]:
        entry: dict[str, Any] = {"variant_id": vid, "a": rows_a.get(vid), "b": rows_b.get(vid)}
        if vid in a.arms and vid in b.arms:
            # Two runs never ran side by side: B ÷ A over their repeats, never paired.
            c = stats.compare_arms(a.arms[vid], b.arms[vid], paired=False)
            entry |= {
                "comparison": c,
                "verdict": stats.ratio_verdict(
                    c.step_ratio if c else None, step_floor, target=b.target
                ),
                "accuracy_verdict": stats.difference_verdict(
                    c.accuracy_delta_pt if c else None, acc_floor
                ),
            }
        out.append(entry)
    return out


def _versions(s: RunSummary) -> dict[str, Any]:
    machine = s.machine
    return {"cpu": (machine["cpu_model"], machine["cpu_cores"]), **machine["versions"]}


def warnings(a: RunSummary, b: RunSummary) -> list[str]:
    """What makes cross-run ratios carry more than the code's effect."""
    out = []
    va, vb = _versions(a), _versions(b)
    changed = [
        k for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k) and k != "mnist-bench"
    ]
    if changed:
        listing = "; ".join(f"{k}: {va.get(k)} → {vb.get(k)}" for k in changed)
        out.append(f"The runs differ in machine or versions ({listing}).")
    for key in sorted(set(a.probes) & set(b.probes)):
        pa, pb = a.probes[key], b.probes[key]
        if pa.best < pb.worst or pb.best < pa.worst:
            dev, dt, n = key
            out.append(
                f"The machine's own probe disagrees beyond its spread: {dev} {dt} {n}² matmul "
                f"{pa.worst / 1e9:,.1f}–{pa.best / 1e9:,.1f} GFLOP/s in A, "
                f"{pb.worst / 1e9:,.1f}–{pb.best / 1e9:,.1f} in B. The machine changed between "
                "the runs, and the ratios below carry that change."
            )
            break
    if a.floor and b.floor:
        ia, ib = a.floor.comparison.step_ratio, b.floor.comparison.step_ratio
        if ia.hi < ib.lo or ib.hi < ia.lo:
            out.append(
                f"The runs' A/A controls disagree beyond their intervals (A {ratio_cell(ia)}, "
                f"B {ratio_cell(ib)}): one run was noisier than the other."
            )
    return out


def render_compare(
    records_a: list[dict[str, Any]], records_b: list[dict[str, Any]], name_a: str, name_b: str
) -> str:
    """Markdown: per variant A and B step [95% CI], B ÷ A [CI] and verdicts, after the warnings."""
    a, b = summarize_run(records_a), summarize_run(records_b)
    entries = compare_rows(a, b)
    table = []
    for e in entries:
        c = e.get("comparison")
        table.append(
            {
                "variant": e["variant_id"],
                "A step ms [95% CI]": _cell(e["a"]),
                "B step ms [95% CI]": _cell(e["b"]),
                "B ÷ A step [95% CI]": ratio_cell(c.step_ratio) if c else "–",
                "verdict": e.get("verdict", "not comparable"),
                "Δ test acc pt [95% CI]": delta_cell(c.accuracy_delta_pt) if c else "–",
                "accuracy verdict": e.get("accuracy_verdict", "–"),
            }
        )
    step_floor, _ = _floor(a, b)
    lines = [
        "# Comparison",
        "",
        f"A = `{name_a}`, B = `{name_b}`. B ÷ A comes from each run's repeats (two runs never ran "
        f"side by side, so nothing is paired across them). Verdicts: {stats.VERDICT_RULE}; here "
        f"f is the larger of the two runs' A/A differences ({100 * step_floor:.1f}%), and the "
        f"step-time target ±{100 * b.target:g}%.",
        "",
    ]
    lines += [f"**Warning:** {w}" for w in warnings(a, b)]
    if not any(e["a"] and e["b"] for e in entries):
        lines.append(
            "**The two runs share no variants**, so nothing below can be compared; "
            "run the same profile (or the same `--set` options) for both."
        )
    return "\n".join(lines) + "\n\n" + markdown_table(table) + "\n"


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "absent"
    if row["status"] != "ok":
        return row["status"]
    return step_cell(row)
