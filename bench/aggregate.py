"""Repeats → one row per variant: medians and spreads, a pure function of records."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench import stats


def _spread(values: list[float]) -> tuple[float | None, float | None]:
    return (min(values), max(values)) if len(values) > 1 else (None, None)


def variant_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group variant records by id (first-seen order) and summarise their successful repeats."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[rec["variant_id"]].append(rec)
    rows = []
    for variant_id, recs in groups.items():
        ok = [r for r in recs if r["status"] == "ok"]
        v = recs[0]["variant"]
        row: dict[str, Any] = {
            "variant_id": variant_id,
            **{k: v[k] for k in ("batch_size", "validation", "precision", "device", "epochs")},
            "status": "ok" if ok else recs[-1]["status"],
            "reason": None if ok else recs[-1]["reason"],
            "repeats_ok": len(ok),
            "repeats": len(recs),
        }
        if ok:
            row.update(_summarise_ok(ok))
        rows.append(row)
    return rows


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


def display_row(row: dict[str, Any]) -> dict[str, str]:
    """A row formatted for the markdown summary table (units in the headers)."""
    out = {
        "variant": row["variant_id"],
        "batch": str(row["batch_size"]),
        "validation": row["validation"],
        "precision": row["precision"],
        "device": row["device"],
        "status": row["status"],
    }
    if row["status"] != "ok":
        out["note"] = str(row["reason"]).splitlines()[0][:100]
        return out
    spread = (
        f" [{row['step_ms_min']:.3f}–{row['step_ms_max']:.3f}]"
        if row["step_ms_min"] is not None
        else ""
    )
    ttt = row["time_to_target_s"]
    out.update(
        {
            "median step ms [repeat range]": f"{row['step_ms']:.3f}{spread}",
            "p10–p90 ms": f"{row['step_ms_p10']:.3f}–{row['step_ms_p90']:.3f}",
            "wall ms/step": _num(row["wall_step_ms"], ".3f"),
            "first step ms": _num(row["first_step_ms"], ".0f"),
            "samples/s": _num(row["samples_per_s"], ",.0f"),
            "train s/epoch": _num(row["train_s_per_epoch"], ".2f"),
            "val s/epoch": _num(row["val_s_per_epoch"], ".2f"),
            "test acc": _num(row["test_accuracy"], ".4f"),
            f"time to {row['target_accuracy']:g} s": "not reached" if ttt is None else f"{ttt:.1f}",
            "repeats ok": f"{row['repeats_ok']}/{row['repeats']}",
            "note": "",
        }
    )
    return out
