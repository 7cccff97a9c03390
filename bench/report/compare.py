"""Two runs side by side: their paired ratios when both ran in paired sets, and absolute times.

Two paired runs compare by what each measured side by side on its own machine: per variant in both,
(B's variant ÷ B's baseline) ÷ (A's variant ÷ A's baseline). A machine that is uniformly faster or
slower, or an hour that is, leaves that ratio of ratios alone. Its interval is Welch's t-interval
over the two runs' independent sets (``stats.ratio_of_ratios``) and its noise floor is
√(f_A² + f_B²) of the runs' A/A floors (``stats.cross_run_floor``: each run's ratio carries its own
re-measuring noise, independently of the other's).

Absolute step times stay visible below them, B ÷ A from each run's repeats, labelled as taken at
different times (and on different machines when the records' machine facts differ): they carry
whatever changed between the runs. Runs without paired sets (one job after another, or recorded
before paired sets) have only that absolute comparison, as they always had. The header says whether
the machines match (CPU model and cores, Python and package versions), and warns when the runs' own
probes of the machine (peak trials, A/A control) disagree beyond their spread.
"""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.report.aggregate import RunSummary, summarize_run
from bench.report.axes import delta_cell, ratio_cell
from bench.report.tables import markdown_table, step_cell

MIN_SETS = 2  # a run's ratio needs two paired sets for a spread (stats.compare_arms)


def _floor(a: RunSummary, b: RunSummary) -> tuple[float, float]:
    """The larger of the two runs' A/A differences: what re-running alone already moves."""
    floors = [s.floor for s in (a, b) if s.floor is not None]
    return (
        max((f.step for f in floors), default=0.0),
        max((f.accuracy_pt for f in floors), default=0.0),
    )


def paired_floor(a: RunSummary, b: RunSummary) -> float:
    """The floor of a ratio of the runs' ratios: √(f_A² + f_B²) (a run without a control: 0)."""
    return stats.cross_run_floor(*(s.floor.step if s.floor else 0.0 for s in (a, b)))


def is_paired(s: RunSummary) -> bool:
    """Whether some variant of the run has a step ratio from paired sets against its baseline."""
    return any(
        j["comparison"] is not None and j["comparison"].paired_sets >= MIN_SETS
        for j in s.versus_baseline.values()
    )


def paired_rows(a: RunSummary, b: RunSummary) -> list[dict[str, Any]]:
    """Per variant paired against the same baseline in both runs (A's order): each run's ratio,
    their ratio B ÷ A with its interval, and the verdict against ``paired_floor``."""
    base = a.baseline
    if base is None or base != b.baseline:
        return []
    floor, out = paired_floor(a, b), []
    for vid, ja in a.versus_baseline.items():
        jb = b.versus_baseline.get(vid)
        ca, cb = ja["comparison"], jb and jb["comparison"]
        if not (ca and cb and min(ca.paired_sets, cb.paired_sets) >= MIN_SETS):
            continue
        change = stats.ratio_of_ratios(a.arms[base], a.arms[vid], b.arms[base], b.arms[vid])
        out.append(
            {
                "variant_id": vid,
                "a": ca,
                "b": cb,
                "change": change,
                "verdict": stats.ratio_verdict(change, floor, target=b.target),
            }
        )
    return out


def compare_rows(a: RunSummary, b: RunSummary) -> list[dict[str, Any]]:
    """Absolute times: one entry per variant id present in either run (A's order first)."""
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
    return {
        "cpu": (machine["cpu_model"], machine["cpu_cores"]),
        "python": machine.get("python"),
        **machine["versions"],
    }


def machine_changes(a: RunSummary, b: RunSummary) -> list[str]:
    """'key: A's → B's' for each machine fact or version that differs (mnist-bench's own aside)."""
    va, vb = _versions(a), _versions(b)
    return [
        f"{k}: {va.get(k)} → {vb.get(k)}"
        for k in sorted(set(va) | set(vb))
        if va.get(k) != vb.get(k) and k != "mnist-bench"
    ]


def machine_line(a: RunSummary, b: RunSummary) -> str:
    """Whether the runs' machines match, from their records' machine facts."""
    changed = machine_changes(a, b)
    if changed:
        return (
            f"**Warning: the machines differ** ({'; '.join(changed)}). Absolute times below "
            "compare two machines, not only two builds."
        )
    model, cores = _versions(a)["cpu"]
    return (
        f"**Machines:** the same in both runs' records (CPU {model}, {cores} cores, the same "
        "Python and package versions); a machine's load or hour can still differ."
    )


def warnings(a: RunSummary, b: RunSummary) -> list[str]:
    """What makes absolute ratios across runs carry more than the code's effect (the machine
    facts themselves are in ``machine_line``)."""
    out = []
    for key in sorted(set(a.probes) & set(b.probes)):
        pa, pb = a.probes[key], b.probes[key]
        if pa.best < pb.worst or pb.best < pa.worst:
            dev, dt, n = key
            out.append(
                f"The machine's own probe disagrees beyond its spread: {dev} {dt} {n}² matmul "
                f"{pa.worst / 1e9:,.1f}–{pa.best / 1e9:,.1f} GFLOP/s in A, "
                f"{pb.worst / 1e9:,.1f}–{pb.best / 1e9:,.1f} in B. The machine changed between "
                "the runs, and the absolute ratios below carry that change."
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


def _paired_section(a: RunSummary, b: RunSummary, rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return _why_not_paired(a, b)
    fa, fb = (100 * s.floor.step if s.floor else 0.0 for s in (a, b))
    table = [
        {
            "variant": r["variant_id"],
            "A: ÷ baseline [95% CI]": ratio_cell(r["a"].step_ratio),
            "B: ÷ baseline [95% CI]": ratio_cell(r["b"].step_ratio),
            "sets A / B": f"{r['a'].paired_sets} / {r['b'].paired_sets}",
            "B ÷ A [95% CI]": ratio_cell(r["change"]),
            "verdict": r["verdict"],
        }
        for r in rows
    ]
    return [
        f"## Paired ratios: each variant ÷ `{a.baseline}`, in its own run",
        "",
        "Each run measured every variant side by side with its baseline (paired sets), on its "
        "own machine in its own hour, so B ÷ A here is (B's variant ÷ B's baseline) ÷ (A's "
        "variant ÷ A's baseline): a machine uniformly faster or slower leaves it unchanged. Its "
        "95% interval is Welch's t-interval on the difference of the two runs' mean set log "
        f"ratios (the runs' sets are independent). Verdicts: {stats.VERDICT_RULE}; here f = "
        f"√(f_A² + f_B²) = {100 * paired_floor(a, b):.1f}% from the runs' A/A floors ({fa:.1f}% "
        f"and {fb:.1f}%), as each run's ratio carries its own re-measuring noise, independently "
        f"of the other's; the step-time target is ±{100 * b.target:g}%. Variants not paired in "
        "both runs (e.g. multi_worker arms) are compared by absolute times only.",
        "",
        markdown_table(table),
        "",
    ]


def _why_not_paired(a: RunSummary, b: RunSummary) -> list[str]:
    pa, pb = is_paired(a), is_paired(b)
    if pa and pb and a.baseline != b.baseline:
        why = (
            f"both runs are paired, but against different baselines (`{a.baseline}`, "
            f"`{b.baseline}`), so their ratios measure different things"
        )
    elif pa and pb:
        why = (
            "both runs are paired, but no variant has two paired sets against the baseline in both"
        )
    elif pa or pb:
        unpaired = "B" if pa else "A"
        why = f"{unpaired} ran one job after another (or before paired sets), so it has no paired ratios"
    else:
        why = "neither run ran in paired sets (one job after another, or recorded before them)"
    return [f"**No paired ratios:** {why}. Only absolute times compare below.", ""]


def _absolute_section(
    a: RunSummary, b: RunSummary, entries: list[dict[str, Any]], paired: bool
) -> list[str]:
    step_floor, _ = _floor(a, b)
    where = "at different times"
    if machine_changes(a, b):
        where = "on different machines and " + where
    lead = (
        "For two paired runs the paired ratios above are the comparison; this table shows how "
        "the runs' machines and hours compared. "
        if paired
        else ""
    )
    rule = "the same rule" if paired else stats.VERDICT_RULE
    lines = [
        f"## Absolute step times, taken {where}",
        "",
        f"{lead}B ÷ A comes from each run's repeats (the two-level bootstrap; nothing pairs "
        "across runs), so it carries every change between the runs (machine, load, versions), "
        f"not only the code's. Verdicts: {rule}; here f is the larger of the two "
        f"runs' A/A differences ({100 * step_floor:.1f}%), and the step-time target "
        f"±{100 * b.target:g}%.",
        "",
    ]
    lines += [f"**Warning:** {w}" for w in warnings(a, b)]
    if not any(e["a"] and e["b"] for e in entries):
        lines.append(
            "**The two runs share no variants**, so nothing below can be compared; "
            "run the same profile (or the same `--set` options) for both."
        )
    return lines


def render_compare(
    records_a: list[dict[str, Any]], records_b: list[dict[str, Any]], name_a: str, name_b: str
) -> str:
    """Markdown: whether the machines match, the paired ratios of two paired runs, then each
    variant's absolute A and B step [95% CI], B ÷ A [CI] and verdicts, after the warnings."""
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
    lines = ["# Comparison", "", f"A = `{name_a}`, B = `{name_b}`.", "", machine_line(a, b), ""]
    rows = paired_rows(a, b)
    lines += _paired_section(a, b, rows)
    lines += _absolute_section(a, b, entries, paired=bool(rows))
    return "\n".join(lines) + "\n\n" + markdown_table(table) + "\n"


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "absent"
    if row["status"] != "ok":
        return row["status"]
    return step_cell(row)
