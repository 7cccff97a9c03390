"""Repeats → one row per variant: medians and spreads, a pure function of records."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench import stats
from mnist_models.spec import compute_dtype


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


# Records written before the backend axis ran on TensorFlow and did not record what jit_compile
# resolved to; these describe them.
LEGACY_BACKEND = "tensorflow"
LEGACY_EXECUTION = {False: "tf.function graph, no XLA", True: "tf.function graph, XLA requested"}


def backend_facts(rec: dict[str, Any]) -> dict[str, Any]:
    """Backend, its version, jit_compile as asked and as resolved, and what ran, for one record.

    From the record's 'backend' section; records from before it existed ran on TensorFlow.
    """
    section = rec.get("backend")
    requested = rec["variant"].get("jit_compile", False)
    if section:
        return {
            "backend": section["name"],
            "backend_version": section["version"],
            "jit_requested": section["jit_compile"]["requested"],
            "jit_resolved": section["jit_compile"]["resolved"],
            "execution": section["execution"],
        }
    return {
        "backend": rec["variant"].get("backend", LEGACY_BACKEND),
        "backend_version": rec["machine"]["versions"].get("tensorflow"),
        "jit_requested": requested,
        "jit_resolved": None,  # not recorded
        "execution": LEGACY_EXECUTION[requested is True],
    }


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
            "backend": v.get("backend", LEGACY_BACKEND),
            "jit_compile": v.get("jit_compile", False),
            "status": "ok" if ok else recs[-1]["status"],
            "reason": None if ok else recs[-1]["reason"],
            "repeats_ok": len(ok),
            "repeats": len(recs),
        }
        if ok:
            row.update(backend_facts(ok[0]))
            row.update(_summarise_ok(ok))
            peak = (peaks or {}).get((v["device"], compute_dtype(v["precision"])))
            row["peak_flops_per_s"] = peak
            row["pct_of_peak"] = 100 * row["achieved_flops_per_s"] / peak if peak else None
        rows.append(row)
    return rows


def _summarise_ok(ok: list[dict[str, Any]]) -> dict[str, Any]:
    derived = [stats.repeat_stats(r) for r in ok]

    def med(values: Any) -> float | None:
        present = [x for x in values if x is not None]
        return stats.median(present) if present else None

    medians = [d["step_ms"]["median"] for d in derived]
    lo, hi = _spread(medians)
    first = ok[0]
    return {
        "step_ms": stats.median(medians),
        "step_ms_min": lo,
        "step_ms_max": hi,
        "step_ms_cv": stats.cv(medians),
        "step_ms_p10": med(d["step_ms"]["p10"] for d in derived),
        "step_ms_p90": med(d["step_ms"]["p90"] for d in derived),
        "first_step_ms": med(d["first_step_ms"] for d in derived),
        "wall_step_ms": med(d["wall_step_ms"] for d in derived),
        "long_steps": med(d["long_steps"] for d in derived),
        "long_steps_s": med(d["long_steps_s"] for d in derived),
        "steps_per_epoch": first["timing"]["steps_per_epoch"],
        "samples_per_s": med(d["samples_per_s"] for d in derived),
        "train_s_per_epoch": med(stats.median(r["timing"]["train_s_per_epoch"]) for r in ok),
        "val_s_per_epoch": med(
            sum(r["timing"]["val_s_per_epoch"]) / len(r["timing"]["val_s_per_epoch"]) for r in ok
        ),
        "final_eval_s": med(r["timing"]["final_eval_s"] for r in ok),
        "test_accuracy": med(r["accuracy"]["test_accuracy"] for r in ok),
        "target_accuracy": derived[0]["target_accuracy"],
        "time_to_target_s": med(d["time_to_target_s"] for d in derived),
        "reached_target": sum(d["time_to_target_s"] is not None for d in derived),
        "train_images": first["accuracy"]["train_images"],
        "param_bytes": first["model"]["param_bytes"],
        "optimizer_bytes": first["model"]["optimizer_bytes"],
        "activation_bytes_est": first["model"]["activation_bytes_per_batch_est"],
        "peak_rss_bytes": med(r["memory"]["peak_rss_bytes"] for r in ok),
        "gpu_peak_bytes": med(r["memory"]["gpu_peak_bytes"] for r in ok),
        "flops_per_step": first["model"]["flops_per_step"],
        "achieved_flops_per_s": med(d["achieved_flops_per_s"] for d in derived),
    }
