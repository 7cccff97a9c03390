"""Repeats → one row per variant: medians and spreads, a pure function of records."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench import stats

# Which measured matmul peak a precision policy is held against: its hidden layers' compute dtype.
PEAK_DTYPE = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
AXES = ("batch_size", "validation", "precision", "device")


def peak_flops(records: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(device, dtype) → matmul FLOP/s measured by this run's probe (the latest one if merged)."""
    peaks: dict[tuple[str, str], float] = {}
    for rec in records:
        if rec["kind"] == "probe":
            for device, by_dtype in rec["probe"]["peak_flops_per_s"].items():
                peaks.update({(device, dt): v for dt, v in by_dtype.items() if v})
    return peaks


def baseline_id(records: list[dict[str, Any]]) -> str | None:
    """The run's baseline variant: as recorded, else the first variant record."""
    variants = [r for r in records if r["kind"] == "variant"]
    recorded = next((r["run"].get("baseline") for r in variants if r["run"].get("baseline")), None)
    return recorded or (variants[0]["variant_id"] if variants else None)


def _spread(values: list[float]) -> tuple[float | None, float | None]:
    return (min(values), max(values)) if len(values) > 1 else (None, None)


def variant_rows(
    records: list[dict[str, Any]], peaks: dict[tuple[str, str], float] | None = None
) -> list[dict[str, Any]]:
    """Group variant records by id (first-seen order) and summarise their successful repeats."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        if rec["kind"] == "variant":
            groups[rec["variant_id"]].append(rec)
    rows = []
    for variant_id, recs in groups.items():
        ok = [r for r in recs if r["status"] == "ok"]
        v = recs[0]["variant"]
        row: dict[str, Any] = {
            "variant_id": variant_id,
            **{k: v[k] for k in ("batch_size", "validation", "precision", "device", "epochs")},
            # batch_size is the global batch; a tf.distribute strategy splits it over replicas.
            "strategy": v.get("strategy", "default"),
            "replicas": 1 if v.get("strategy", "default") == "default" else v["replicas"],
            "status": "ok" if ok else recs[-1]["status"],
            "reason": None if ok else recs[-1]["reason"],
            "repeats_ok": len(ok),
            "repeats": len(recs),
        }
        if ok:
            row.update(_summarise_ok(ok))
            peak = (peaks or {}).get((v["device"], PEAK_DTYPE[v["precision"]]))
            row["peak_flops_per_s"] = peak
            row["pct_of_peak"] = 100 * row["achieved_flops_per_s"] / peak if peak else None
        rows.append(row)
    return rows


LONG_STEP_FACTOR = 10  # a step this many times the median is a pause, not a training step


def long_steps(record: dict[str, Any]) -> tuple[int, float]:
    """(count, total seconds) of steps over LONG_STEP_FACTOR × the median, the trace step excluded."""
    median = record["timing"]["step_ms"]["median"]
    steps = [s for epoch in record["timing"]["step_ms_raw"] for s in epoch][1:]
    slow = [s for s in steps if s > LONG_STEP_FACTOR * median]
    return len(slow), sum(slow) / 1000


def _summarise_ok(ok: list[dict[str, Any]]) -> dict[str, Any]:
    def med(get: Any) -> float | None:
        values = [x for x in (get(r) for r in ok) if x is not None]
        return stats.median(values) if values else None

    medians = [r["timing"]["step_ms"]["median"] for r in ok]
    lo, hi = _spread(medians)
    ttt = [r["accuracy"]["time_to_target_s"] for r in ok]
    first = ok[0]
    return {
        "step_ms": stats.median(medians),
        "step_ms_min": lo,
        "step_ms_max": hi,
        "step_ms_cv": stats.cv(medians),
        "step_ms_p10": med(lambda r: r["timing"]["step_ms"]["p10"]),
        "step_ms_p90": med(lambda r: r["timing"]["step_ms"]["p90"]),
        "first_step_ms": med(lambda r: r["timing"]["first_step_ms"]),
        "wall_step_ms": med(lambda r: r["timing"]["wall_step_ms"]),
        "long_steps": med(lambda r: long_steps(r)[0]),
        "long_steps_s": med(lambda r: long_steps(r)[1]),
        "steps_per_epoch": first["timing"]["steps_per_epoch"],
        "samples_per_s": med(lambda r: r["timing"]["samples_per_s"]),
        "train_s_per_epoch": med(lambda r: stats.median(r["timing"]["train_s_per_epoch"])),
        "val_s_per_epoch": med(
            lambda r: sum(r["timing"]["val_s_per_epoch"]) / len(r["timing"]["val_s_per_epoch"])
        ),
        "final_eval_s": med(lambda r: r["timing"]["final_eval_s"]),
        "test_accuracy": med(lambda r: r["accuracy"]["test_accuracy"]),
        "target_accuracy": first["accuracy"]["target_accuracy"],
        "time_to_target_s": med(lambda r: r["accuracy"]["time_to_target_s"]),
        "reached_target": sum(t is not None for t in ttt),
        "train_images": first["accuracy"]["train_images"],
        "param_bytes": first["model"]["param_bytes"],
        "optimizer_bytes": first["model"]["optimizer_bytes"],
        "activation_bytes_est": first["model"]["activation_bytes_per_batch_est"],
        "peak_rss_bytes": med(lambda r: r["memory"]["peak_rss_bytes"]),
        "gpu_peak_bytes": med(lambda r: r["memory"]["gpu_peak_bytes"]),
        "flops_per_step": first["model"]["flops_per_step"],
        "achieved_flops_per_s": med(lambda r: r["model"]["achieved_flops_per_s"]),
    }


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _kb(value: float | None) -> str:
    """KB = 1024 B, as Keras prints parameter memory."""
    return "–" if value is None else f"{value / 1024:,.2f}"


def step_cell(row: dict[str, Any]) -> str:
    """'1.234 [1.200–1.300]': median of repeat medians [their range]."""
    spread = (
        f" [{row['step_ms_min']:.3f}–{row['step_ms_max']:.3f}]"
        if row["step_ms_min"] is not None
        else ""
    )
    return f"{row['step_ms']:.3f}{spread}"


def ttt_cell(row: dict[str, Any]) -> str:
    """Time to target in seconds, or why there is none."""
    if row["validation"] == "end_only":
        return "n/a (no per-epoch validation)"
    if row["time_to_target_s"] is None:
        return "not reached"
    return f"{row['time_to_target_s']:.1f} ({row['reached_target']}/{row['repeats_ok']})"


def display_row(row: dict[str, Any]) -> dict[str, str]:
    """A row formatted for the markdown summary table (units in the headers)."""
    out = {
        "variant": row["variant_id"],
        "batch": str(row["batch_size"])
        + (
            f" = {row['replicas']}×{row['batch_size'] // row['replicas']}"
            if row["replicas"] > 1
            else ""
        ),
        "validation": row["validation"],
        "precision": row["precision"],
        "device": row["device"],
        "status": row["status"],
    }
    if row["status"] != "ok":
        return out | {"note": str(row["reason"]).splitlines()[0][:100]}
    cv = row["step_ms_cv"]
    return out | {
        "median step ms [repeat range]": step_cell(row),
        "p10–p90 ms": f"{row['step_ms_p10']:.3f}–{row['step_ms_p90']:.3f}",
        "CV %": "–" if cv is None else f"{100 * cv:.1f}",
        "wall ms/step": _num(row["wall_step_ms"], ".3f"),
        "first step ms": _num(row["first_step_ms"], ".0f"),
        "samples/s": _num(row["samples_per_s"], ",.0f"),
        "train s/epoch": _num(row["train_s_per_epoch"], ".2f"),
        "val s/epoch": _num(row["val_s_per_epoch"], ".2f"),
        "test acc": _num(row["test_accuracy"], ".4f"),
        f"time to {row['target_accuracy']:g} s": ttt_cell(row),
        "params KB": _kb(row["param_bytes"]),
        "Adam state KB": _kb(row["optimizer_bytes"]),
        "activations KB/batch (est.)": _kb(row["activation_bytes_est"]),
        "peak RSS MiB": _num(
            row["peak_rss_bytes"] / 2**20 if row["peak_rss_bytes"] else None, ",.0f"
        ),
        "GFLOP/s": _num(row["achieved_flops_per_s"] / 1e9, ".2f"),
        "% of peak": _num(row["pct_of_peak"], ".1f"),
        "repeats ok": f"{row['repeats_ok']}/{row['repeats']}",
        "note": "",
    }
