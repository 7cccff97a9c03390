"""Findings: short sentences generated from the aggregated rows, each quoting the table's figures."""

from __future__ import annotations

from typing import Any

from bench.records import first_line
from bench.report.axes import axis_comparisons, speed_phrase
from bench.stats import LONG_STEP_FACTOR

NOISY_CV = 0.10  # repeat-to-repeat CV above which a difference of that size is noise


def findings(rows: list[dict[str, Any]], baseline_id: str | None) -> list[str]:
    """Every finding the numbers support; none is emitted without its figures."""
    ok = [r for r in rows if r["status"] == "ok"]
    base = next((r for r in ok if r["variant_id"] == baseline_id), None)
    out: list[str] = []
    if base:
        out += _throughput(ok, base)
        comparisons = axis_comparisons(rows, base["variant_id"])
        out += _validation_cost(comparisons, base)
        out += _mixed_precision(comparisons, base)
        out += _wall_vs_median(base)
    out += _time_to_target(ok)
    out += _noise(ok)
    out += _not_run(rows)
    return out


def _throughput(ok: list[dict[str, Any]], base: dict[str, Any]) -> list[str]:
    best = max(ok, key=lambda r: r["samples_per_s"])
    if best is base:
        return [
            f"The baseline `{base['variant_id']}` has the highest throughput of all variants "
            f"({base['samples_per_s']:,.0f} samples/s)."
        ]
    ratio = best["samples_per_s"] / base["samples_per_s"]
    acc = 100 * (best["test_accuracy"] - base["test_accuracy"])
    return [
        f"Largest throughput gain: `{best['variant_id']}` trains {best['samples_per_s']:,.0f} "
        f"samples/s, {ratio:.2f}× the baseline's {base['samples_per_s']:,.0f} (median step "
        f"{best['step_ms']:.3f} ms vs {base['step_ms']:.3f} ms), at {acc:+.2f} pt test accuracy "
        f"({best['test_accuracy']:.4f} vs {base['test_accuracy']:.4f}) after {base['epochs']} epochs."
    ]


def _validation_cost(
    comparisons: dict[str, list[dict[str, Any]]], base: dict[str, Any]
) -> list[str]:
    if base["validation"] != "per_epoch" or base["val_s_per_epoch"] is None:
        return []
    train, val = base["train_s_per_epoch"], base["val_s_per_epoch"]
    text = (
        f"Per-epoch validation on the test set costs {val:.2f} s per epoch, "
        f"{100 * val / train:.0f}% on top of {train:.2f} s of training (baseline `{base['variant_id']}`)"
    )
    end_only = next(
        (
            e["row"]
            for e in comparisons.get("validation", [])
            if e["value"] == "end_only" and e["row"]["status"] == "ok"
        ),
        None,
    )
    if end_only:
        text += (
            f"; `end_only` pays {end_only['final_eval_s']:.2f} s once, after "
            f"{end_only['epochs']} epochs, and trains at {end_only['train_s_per_epoch']:.2f} s per epoch"
        )
    return [text + "."]


def _mixed_precision(
    comparisons: dict[str, list[dict[str, Any]]], base: dict[str, Any]
) -> list[str]:
    out = []
    for entry in comparisons.get("precision", []):
        row = entry["row"]
        if row["status"] != "ok":
            continue
        verdict = "helps" if entry["step_ratio"] < 1 else "does not help"
        out.append(
            f"On {base['device']}, {row['precision']} {verdict}: {speed_phrase(entry['step_ratio'])} "
            f"per step than {base['precision']} ({row['step_ms']:.3f} vs {base['step_ms']:.3f} ms "
            f"at batch {base['batch_size']}), {entry['accuracy_delta_pt']:+.2f} pt test accuracy; "
            f"parameter memory is unchanged ({row['param_bytes'] / 1024:.2f} KB) because the "
            "variables stay float32."
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


def _time_to_target(ok: list[dict[str, Any]]) -> list[str]:
    reached = [r for r in ok if r["time_to_target_s"] is not None]
    if not ok:
        return []
    target = ok[0]["target_accuracy"]
    if not reached:
        most = max(r["epochs"] for r in ok)
        return [f"No variant reached validation accuracy {target:g} within {most} epochs."]
    best = min(reached, key=lambda r: r["time_to_target_s"])
    return [
        f"Fastest to {target:g} validation accuracy: `{best['variant_id']}`, after "
        f"{best['time_to_target_s']:.1f} s of training (validation time excluded; "
        f"{len(reached)} of {len(ok)} variants reached it)."
    ]


def _noise(ok: list[dict[str, Any]]) -> list[str]:
    noisy = [r for r in ok if r["step_ms_cv"] is not None and r["step_ms_cv"] > NOISY_CV]
    if not noisy:
        return []
    names = ", ".join(f"`{r['variant_id']}` ({100 * r['step_ms_cv']:.0f}%)" for r in noisy)
    return [
        f"Noisy step times (repeat-to-repeat CV above {100 * NOISY_CV:.0f}%): {names}; "
        "differences smaller than that are not meaningful on this machine."
    ]


def _not_run(rows: list[dict[str, Any]]) -> list[str]:
    bad = [r for r in rows if r["status"] != "ok"]
    if not bad:
        return []
    names = "; ".join(f"`{r['variant_id']}` {r['status']}: {first_line(r['reason'])}" for r in bad)
    return [f"{len(bad)} variant(s) produced no measurement: {names}."]
