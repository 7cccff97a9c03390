"""Findings: short sentences from the run summary; a difference is called real only by its verdict."""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.plan.variant import DEFAULT_BACKEND
from bench.records import first_line
from bench.report.aggregate import BUSY_PROBE_FRACTION, RunSummary, judged
from bench.report.axes import delta_cell, ratio_cell
from bench.report.contention import contention_findings
from bench.stats import LONG_STEP_FACTOR

NOISY_CV = 0.10  # repeat-to-repeat CV worth pointing out


def findings(summary: RunSummary) -> list[str]:
    """Every finding the numbers support; none is emitted without its figures and interval."""
    ok = [r for r in summary.rows if r["status"] == "ok" and not r["control"]]
    base = summary.row(summary.baseline)
    base = base if base and base["status"] == "ok" else None
    out: list[str] = _noise_floor(summary)
    if base:
        out += _throughput(summary, ok, base)
        out += _validation_cost(summary.comparisons, base)
        out += _mixed_precision(summary.comparisons, base)
        out += _wall_vs_median(base)
    out += _fastest_backend(summary, ok)
    out += _time_to_target(ok)
    out += _no_peak_rss(ok)
    out += _noise(ok)
    out += _busy_probes(summary)
    out += contention_findings(summary.contention)
    out += _failed_probes(summary)
    out += _not_run(summary.rows)
    return out


def _noise_floor(summary: RunSummary) -> list[str]:
    floor = summary.floor
    if floor is None:
        return []
    c = floor.comparison
    how = "in the same paired sets" if c.paired_sets else "interleaved"
    seeds = "with its own seeds" if summary.control_own_seeds else "replaying the baseline's seeds"
    text = (
        f"Noise floor (A/A control): the baseline measured again {how}, {seeds}, "
        f"differs by {100 * floor.step:.1f}% in median step ({ratio_cell(c.step_ratio)}), "
        f"{100 * floor.train_epoch:.1f}% in s/epoch and {floor.accuracy_pt:.2f} pt in test "
        "accuracy; a difference is real only when its whole interval clears that."
    )
    if c.step_ratio.excludes(1.0):
        text += (
            " Warning: the two identical arms differ beyond their interval, so the machine's speed "
            "changed during the run; treat every verdict with care."
        )
    return [text]


def _throughput(summary: RunSummary, ok: list[dict[str, Any]], base: dict[str, Any]) -> list[str]:
    ranked = sorted(ok, key=lambda r: r["samples_per_s"], reverse=True)
    best = ranked[0]
    ahead, versus_next = _versus_runner_up(summary, ranked)
    label = "Highest throughput" if ahead else "Highest throughput by point estimate"
    if best is base:
        return [
            f"{label}: the baseline `{base['variant_id']}` at {base['samples_per_s']:,.0f} "
            f"samples/s{versus_next}."
        ]
    j = summary.versus_baseline[best["variant_id"]]
    c = j["comparison"]
    if c is None:
        return []
    return [
        f"{label}: `{best['variant_id']}` at {best['samples_per_s']:,.0f} samples/s, "
        f"{ratio_cell(c.samples_ratio)} the baseline's ({j['throughput_verdict']}){versus_next}; "
        f"test accuracy {delta_cell(c.accuracy_delta_pt)} pt after {base['epochs']} epoch(s): "
        f"{j['accuracy_verdict']}."
    ]


def _versus_runner_up(summary: RunSummary, ranked: list[dict[str, Any]]) -> tuple[bool, str]:
    """(whether the first of a throughput ranking is ahead of the second, a clause saying so).

    Judged by the two arms' own comparison and the one verdict rule, paired where they shared
    paired sets. Arms of a paired run that never shared a set are not compared directly (their
    repeats ran at different moments), so neither is called ahead; nor is an arm of one repeat.
    """
    if len(ranked) < 2:
        return True, ""
    first, second = ranked[0], ranked[1]
    name = f"the runner-up `{second['variant_id']}`"
    j = judged(summary, second["variant_id"], first["variant_id"])
    c = j["comparison"]
    arms = summary.arms
    paired_run = bool(arms[first["variant_id"]].sets or arms[second["variant_id"]].sets)
    if c is None:
        return False, f"; {name} has a single repeat: not compared"
    if paired_run and c.paired_sets < 2:
        return False, f"; {name} never shared a paired set with it: not compared directly"
    how = "paired" if c.paired_sets else "from repeats"
    verdict = j["throughput_verdict"]
    if stats.is_difference(verdict):
        return True, f" and {ratio_cell(c.samples_ratio)} {name}'s ({how}; {verdict})"
    return False, (
        f"; not distinguishable from {name}: {ratio_cell(c.samples_ratio)} ({how}; {verdict})"
    )


def _entry(comparisons: dict[str, list[dict[str, Any]]], axis: str, value: Any) -> Any:
    return next(
        (
            e
            for e in comparisons.get(axis, [])
            if e["value"] == value and e["row"]["status"] == "ok"
        ),
        None,
    )


def _validation_cost(
    comparisons: dict[str, list[dict[str, Any]]], base: dict[str, Any]
) -> list[str]:
    if base["validation"] != "per_epoch" or base["val_s_per_epoch"] is None:
        return []
    train, val = base["train_s_per_epoch"], base["val_s_per_epoch"]
    text = (
        f"Per-epoch validation on the test set takes {val:.2f} s per epoch, "
        f"{100 * val / train:.0f}% of the baseline's {train:.2f} s of training"
    )
    end_only = _entry(comparisons, "validation", "end_only")
    if end_only:
        row, c = end_only["row"], end_only["comparison"]
        text += (
            f"; `end_only` pays {row['final_eval_s']:.2f} s once, after {row['epochs']} epoch(s)"
        )
        if c is not None:
            text += (
                f"; its training s/epoch is {ratio_cell(c.train_epoch_ratio)} the baseline's: "
                f"{end_only['train_verdict']}"
            )
    return [text + "."]


def _mixed_precision(
    comparisons: dict[str, list[dict[str, Any]]], base: dict[str, Any]
) -> list[str]:
    out = []
    for entry in comparisons.get("precision", []):
        row, c = entry["row"], entry.get("comparison")
        if row["status"] != "ok" or c is None:
            continue
        verdict = entry["step_verdict"]
        effect = {"faster": "helps", "slower": "hurts"}.get(verdict) or (
            "has an effect this run could not resolve"
            if verdict.startswith("unresolved")
            else "makes no measurable difference"
        )
        out.append(
            f"On {base['device']}, {row['precision']} {effect}: median step "
            f"{ratio_cell(c.step_ratio)} of {base['precision']}'s ({row['step_ms']:.3f} vs "
            f"{base['step_ms']:.3f} ms at batch {base['batch_size']}; {verdict}); test accuracy "
            f"{delta_cell(c.accuracy_delta_pt)} pt ({entry['accuracy_verdict']}); parameter memory "
            f"stays {row['param_bytes'] / 1024:.2f} KB: the variables stay float32."
        )
    return out


def _wall_vs_median(base: dict[str, Any]) -> list[str]:
    ratio = base["wall_step_ms"] / base["step_ms"]
    text = (
        f"Cross-check for the baseline: wall-clock training time per step is {base['wall_step_ms']:.3f} ms, "
        f"{ratio:.2f}× the median step ({base['step_ms']:.3f} ms)"
    )
    if base["long_steps"]:
        text += (
            f"; a median of {base['long_steps']:g} steps per repeat took over {LONG_STEP_FACTOR}× the median "
            f"({base['long_steps_s']:.2f} s per repeat) — pauses such as garbage collection or other "
            "processes on the machine, which the median leaves out and the wall clock does not"
        )
    return [text + "."]


_SAME_SETUP = ("batch_size", "precision", "validation", "device", "epochs", "strategy")


def _fastest_backend(summary: RunSummary, ok: list[dict[str, Any]]) -> list[str]:
    """Per setup run on several backends: the fastest, and each other backend against it."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in ok:
        groups.setdefault(tuple(row[k] for k in _SAME_SETUP), []).append(row)
    out = []
    for key, rows in groups.items():
        if len({r["backend"] for r in rows}) < 2:
            continue
        best = min(rows, key=lambda r: r["step_ms"])
        parts = []
        for other in sorted(rows, key=lambda r: r["step_ms"]):
            if other is best:
                continue
            parts.append(
                f"vs {other['backend']} ({other['step_ms']:.3f} ms)"
                + _step_judged(summary, other, best)
            )
        devices = len({r["device"] for r in ok}) > 1  # name it only where the run has several
        setup = f"batch {key[0]}, {key[1]}" + (f", {key[3]}" if devices else "")
        claim = (
            f"`{best['backend']}` has the shortest median step ({best['step_ms']:.3f} ms)"
            if all(stats.is_difference(p.rsplit(": ", 1)[1]) for p in parts)
            else f"no backend is measurably fastest; `{best['backend']}` has the shortest median "
            f"step ({best['step_ms']:.3f} ms)"
        )
        out.append(
            f"Backends at {setup}: {claim}; its step ÷ the other's: "
            + "; ".join(parts)
            + "."
            + _against_default(summary, rows, best)
        )
    return out


def _against_default(summary: RunSummary, rows: list[dict[str, Any]], best: dict[str, Any]) -> str:
    """The other backends ÷ the default one (TensorFlow), when it is neither absent nor fastest."""
    base = next((r for r in rows if r["backend"] == DEFAULT_BACKEND), None)
    others = [r for r in rows if r is not best and r is not base]
    if base is None or base is best or not others:
        return ""
    parts = [other["backend"] + _step_judged(summary, base, other) for other in others]
    return f" Against {DEFAULT_BACKEND}: " + "; ".join(parts) + "."


def _step_judged(summary: RunSummary, base: dict[str, Any], row: dict[str, Any]) -> str:
    """' R× [lo–hi]: verdict' of row's step ÷ base's (no ratio where either has no spread)."""
    j = judged(summary, base["variant_id"], row["variant_id"])
    c = j["comparison"]
    return (f" {ratio_cell(c.step_ratio)}" if c else "") + f": {j['step_verdict']}"


def _time_to_target(ok: list[dict[str, Any]]) -> list[str]:
    reached = sorted(
        (r for r in ok if r["time_to_target_s"] is not None), key=lambda r: r["time_to_target_s"]
    )
    if not ok:
        return []
    target = ok[0]["target_accuracy"]
    if not reached:
        most = max(r["epochs"] for r in ok)
        return [
            f"No variant reached validation accuracy {target:g} within {most} epoch(s), so the "
            f"Variants table leaves out the time-to-{target:g} column (the wide table keeps it)."
        ]
    best = reached[0]
    label = "Fastest to" if len(reached) == 1 else "Shortest median time to"
    text = (
        f"{label} {target:g} validation accuracy: `{best['variant_id']}`, after "
        f"{best['time_to_target_s']:.1f} s of training (median over the {best['reached_target']} "
        f"repeat(s) that reached it; validation time excluded; {len(reached)} of {len(ok)} "
        "variants reached it)."
    )
    if len(reached) == 1:
        return [text]
    nxt = reached[1]
    # A time to target is a median of a few repeats' epoch-granular times, with no interval.
    return [
        text + f" The next, `{nxt['variant_id']}`, took {nxt['time_to_target_s']:.1f} s; time "
        "to target has no interval in this report, so neither is called faster."
    ]


def _no_peak_rss(ok: list[dict[str, Any]]) -> list[str]:
    if not ok or any(r["peak_rss_bytes"] for r in ok):
        return []
    return [
        "No record of this run has the job process's own peak RSS (records made before "
        "2026-11-26 read a figure that could be the runner's), so the Variants table leaves out "
        "the peak RSS column (the wide table keeps it)."
    ]


def _noise(ok: list[dict[str, Any]]) -> list[str]:
    noisy = [r for r in ok if r["step_ms_cv"] is not None and r["step_ms_cv"] > NOISY_CV]
    if not noisy:
        return []
    names = ", ".join(f"`{r['variant_id']}` ({100 * r['step_ms_cv']:.0f}%)" for r in noisy)
    return [
        f"Noisy step times (repeat-to-repeat CV above {100 * NOISY_CV:.0f}%): {names}; their "
        "intervals are wide accordingly."
    ]


def _busy_probes(summary: RunSummary) -> list[str]:
    busy = summary.busy_probes
    if not busy:
        return []
    worst = ", ".join(
        f"{dev} {dt} {n}²: {p.worst / 1e9:,.1f}–{p.best / 1e9:,.1f} GFLOP/s over {p.trials} trials"
        for (dev, dt, n), p in busy.items()
    )
    return [
        f"Warning: the machine-peak probe varied by more than {100 * (1 - BUSY_PROBE_FRACTION):.0f}% "
        f"between its trials ({worst}): something else used the machine during the run. "
        "`% of peak` uses the best trial."
    ]


def _failed_probes(summary: RunSummary) -> list[str]:
    """One sentence per machine probe whose process failed or hung: its point has no peak."""
    return [
        f"The machine probe {PROBE_POINTS.get(p['phase'], p['phase'])} "
        f"{'hung' if p['status'] == 'timeout' else 'failed'} ({first_line(p['reason'])}): "
        "peak missing for that point; the run went on, and `% of peak` uses the probes that "
        "measured."
        for p in summary.failed_probes
    ]


PROBE_POINTS = {
    "start": "before the variants",
    "between": "midway through the run",
    "end": "after the variants",
}


def _not_run(rows: list[dict[str, Any]]) -> list[str]:
    bad = [r for r in rows if r["status"] != "ok"]
    if not bad:
        return []
    names = "; ".join(f"`{r['variant_id']}` {r['status']}: {first_line(r['reason'])}" for r in bad)
    return [f"{len(bad)} variant(s) produced no measurement: {names}."]
