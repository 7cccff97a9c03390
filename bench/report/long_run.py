"""The sections of a run of several epochs: the walkthrough side by side, time to target, and the
whole run over seeds (curves, the best epoch, overfitting, what per-epoch validation costs)."""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.report import seeds, to_target, walkthrough
from bench.report.aggregate import RunSummary
from bench.report.tables import markdown_table

CURVES_PNG = "training_curves.png"


def _base_runs(summary: RunSummary) -> list[seeds.SeedRun]:
    return summary.seeds.get(summary.baseline or "", [])


def walkthrough_section(summary: RunSummary) -> str | None:
    """The walkthrough's figures against this run's baseline, when the baseline is its run."""
    runs = _base_runs(summary)
    base = summary.variants.get(summary.baseline or "")
    if not runs or base is None or summary.model is None or not walkthrough.is_walkthrough(base):
        return None
    intro = (
        f"The walkthrough the project began from trained `{summary.baseline}` (batch 32, Adam at "
        "learning rate 0.01, 30 epochs, validation_data every epoch) once and printed the figures "
        f"in the middle column. This run trained it with {len(runs)} seeds; a verdict says "
        "\"matches\" exactly when the walkthrough's figure lies inside this run's 95% interval "
        "(an exact count must be equal). KB = 1024 B, as Keras prints. Seconds are machine-"
        "dependent: the walkthrough's machine is unknown, this one is in the title."
    )
    table = markdown_table(walkthrough.table(runs, summary.model))
    differ = [
        r.figure
        for r in walkthrough.rows(runs, summary.model)
        if walkthrough.verdict(r.printed, r.measured) == "differs" and not r.exact
        and walkthrough.MACHINE_DEPENDENT not in r.figure
    ]  # fmt: skip
    if differ:
        intro += (
            f" The walkthrough's {', '.join(differ)} lie outside the spread of {len(runs)} seeds: "
            "the seed alone does not explain them."
        )
    return "## The walkthrough's run, side by side\n\n" + intro + "\n\n" + table


def targets(summary: RunSummary) -> list[float]:
    return [summary.target_accuracy, *summary.targets] if summary.target_accuracy else []


def _timed(summary: RunSummary) -> dict[str, list[seeds.SeedRun]]:
    """The arms whose runs validated every epoch over several epochs (time to target needs it)."""
    return {
        vid: runs
        for vid, runs in summary.seeds.items()
        if summary.variants[vid]["validation"] == "per_epoch" and runs[0].epochs >= 2
    }


def _banded(summary: RunSummary) -> dict[str, list[seeds.SeedRun]]:
    """The timed arms whose validation curves have bands (the whole-run section and its plot)."""
    return {vid: runs for vid, runs in _timed(summary).items() if seeds.has_curves(runs)}


def to_target_section(summary: RunSummary) -> str | None:
    """Each arm's time to each target over seeds; None for runs of one epoch."""
    timed = _timed(summary)
    if not timed or not targets(summary):
        return None
    rows = [to_target.row(vid, runs, t) for t in targets(summary) for vid, runs in timed.items()]
    n = max(len(r) for r in timed.values())
    intro = (
        "Training seconds (validation excluded) until validation accuracy first reaches each "
        "target, per arm over its seeds. A seed that never reaches it counts as not reached, "
        "never dropped. The median's interval is distribution-free (order statistics), so its "
        f"coverage is exact but cannot reach 95% with {n} seeds; MLPerf's score is the mean after "
        'dropping the fastest and the slowest seed (docs/method.md, "Time to target").'
    )
    return "## Time to target\n\n" + intro + "\n\n" + markdown_table(rows)


def _end_only_of(summary: RunSummary) -> str | None:
    """The arm that differs from the baseline in validating once at the end, and nothing else."""
    base = summary.variants.get(summary.baseline or "")
    if base is None:
        return None
    for vid, v in summary.variants.items():
        if v["validation"] == "end_only" and {**v, "validation": base["validation"]} == base:
            return vid
    return None


def _cost_lines(summary: RunSummary, o: seeds.Overfitting | None) -> list[str]:
    once = _end_only_of(summary)
    runs = _base_runs(summary)
    got = seeds.validation_cost(runs, summary.seeds.get(once or "", []))
    if got is None or once is None:
        return []
    ratio, n = got
    share = seeds.validation_share(runs)
    verdict = stats.ratio_verdict(ratio, above="longer", below="shorter")
    lines = [
        f"- **What validating every epoch costs:** the whole run (training plus {runs[0].epochs} "
        f"validations) of `{summary.baseline}` ÷ `{once}` (training plus one evaluate), paired "
        f"over {n} sets: {ratio.point:.3f}× [{ratio.lo:.3f}–{ratio.hi:.3f}], {verdict}."
    ]
    if share is not None:
        lines.append(
            f"- Validation's share of the per-epoch run: {100 * share.point:.1f}% "
            f"[{100 * share.lo:.1f}, {100 * share.hi:.1f}] over seeds."
        )
    if o is not None:
        lines.append(
            f"- **What it buys:** the curve below, and the best epoch by validation loss (epoch "
            f"{o.best_epoch}), which `{once}` cannot see: it reports epoch {o.last}'s model only."
        )
    return lines


def whole_run_section(summary: RunSummary) -> str | None:
    """Curves with bands, the overfitting finding per arm, validation's cost; None for 1 epoch."""
    timed = _banded(summary)
    if not timed:
        return None
    lines = ["## The whole run, over seeds", ""]
    line = one_line(summary)
    if line:
        lines.append(line)
    base_o = None
    for vid, runs in timed.items():
        o = seeds.overfitting(runs)
        if o is not None:
            lines.append("- " + seeds.overfitting_line(o, f"`{vid}`"))
            base_o = o if vid == summary.baseline else base_o
    lines += _cost_lines(summary, base_o)
    label = summary.baseline if summary.baseline in timed else next(iter(timed))
    lines += ["", f"![Accuracy and loss per epoch over seeds]({CURVES_PNG})", ""]
    lines.append(_band_table(label, timed[label]))
    return "\n".join(lines)


def _band_table(label: str, runs: list[seeds.SeedRun]) -> str:
    bands = {k: seeds.band(runs, k) for k in seeds.CURVES}
    cells = [
        {"epoch": str(e + 1), **{k: _cell(bands[k][e]) for k in seeds.CURVES}}
        for e in range(len(bands["loss"]))
    ]
    return (
        f"<details><summary>{label}: mean over {len(runs)} seeds [95% CI], per epoch</summary>\n\n"
        + markdown_table(cells)
        + "\n\n</details>"
    )


def _cell(b: stats.Interval | None) -> str:
    return "–" if b is None else f"{b.point:.4f} [{b.lo:.4f}, {b.hi:.4f}]"


def curves_plot_input(summary: RunSummary) -> tuple[dict[str, Any], str, int | None] | None:
    """What the curves PNG draws: the baseline's (else the first timed arm's) bands."""
    timed = _banded(summary)
    if not timed:
        return None
    label = summary.baseline if summary.baseline in timed else next(iter(timed))
    o = seeds.overfitting(timed[label])
    bands = {k: seeds.band(timed[label], k) for k in seeds.CURVES}
    return bands, label, o.best_epoch if o else None


def short_label(summary: RunSummary, vid: str) -> str:
    """What a variant's id says beyond the baseline's: 'bs128', 'lr0.001', 'control'; 'baseline'."""
    base = set((summary.baseline or "").split("-"))
    return "-".join(t for t in vid.split("-") if t not in base) or "baseline"


def one_line(summary: RunSummary) -> str | None:
    """The run in one line, for README.md (scripts/readme_findings.py copies it): what the last
    epoch reaches, whether it overfits, validation's cost and each arm's time to the target."""
    timed = _timed(summary)
    if not timed or not summary.target_accuracy:
        return None
    parts = []
    runs = _base_runs(summary)
    final = seeds.band(runs, "val_accuracy")[-1] if runs else None
    o = seeds.overfitting(runs) if runs else None
    if final is not None and o is not None and o.best_epoch == o.last:
        parts.append(
            f"after {runs[0].epochs} epochs `{summary.baseline}` reaches validation accuracy "
            f"{final.point:.4f} [{final.lo:.4f}, {final.hi:.4f}], its validation loss still falling"
        )
    elif final is not None and o is not None:
        state = "overfits" if o.overfits else "no overfitting shown"
        parts.append(
            f"after {runs[0].epochs} epochs `{summary.baseline}` reaches validation accuracy "
            f"{final.point:.4f} [{final.lo:.4f}, {final.hi:.4f}]; its validation loss is lowest at "
            f"epoch {o.best_epoch} and ends {o.rise.point:+.3f} [{o.rise.lo:+.3f}, {o.rise.hi:+.3f}] "
            f"above it ({state})"
        )
    cost = seeds.validation_cost(runs, summary.seeds.get(_end_only_of(summary) or "", []))
    if cost is not None:
        ratio = cost[0]
        parts.append(
            f"validating every epoch takes {ratio.point:.3f}× [{ratio.lo:.3f}–{ratio.hi:.3f}] "
            "the time of validating once"
        )
    target = summary.target_accuracy
    times = []
    for vid, arm_runs in timed.items():
        if summary.variants[vid].get("control"):
            continue
        t = to_target.time_to_target(arm_runs, target)
        got = t.median
        median = to_target.seconds(got[0].point) if got else to_target.seconds(t.times[0])
        times.append(f"{short_label(summary, vid)} {median} ({t.reached}/{len(t.times)})")
    parts.append(f"median training s to {target:g} (seeds that reached it): " + ", ".join(times))
    return "- **In one line:** " + "; ".join(parts) + "."
