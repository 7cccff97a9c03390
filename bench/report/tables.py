"""Markdown tables and the cells in them: the one place numbers become text.

Every table in reports, compare, the gate and the overhead check goes through ``markdown_table``
(pandas + tabulate).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from bench.records import first_line


def markdown_table(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> str:
    """GitHub markdown for rows of {column: cell}; missing cells are empty, nothing is re-parsed."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    return frame.fillna("").to_markdown(index=False, disable_numparse=True)


def human_bytes(n: float | None) -> str:
    """'23.54 GiB', '1.50 MiB', '12 B' (binary units)."""
    if n is None:
        return "–"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def num(value: float | None, fmt: str) -> str:
    """A number in `fmt`, or an en dash where there is none."""
    return "–" if value is None else format(value, fmt)


def kib(value: float | None) -> str:
    """KB = 1024 B, as Keras prints parameter memory."""
    return "–" if value is None else f"{value / 1024:,.2f}"


def ci_cell(value: float | None, lo: float | None, hi: float | None, fmt: str = ".3f") -> str:
    """'1.234 [1.200–1.300]': a figure and its 95% CI (the figure alone with one repeat)."""
    if value is None:
        return "–"
    return format(value, fmt) + (f" [{lo:{fmt}}–{hi:{fmt}}]" if lo is not None else "")


def step_cell(row: dict[str, Any]) -> str:
    """The variant's median step with its 95% CI."""
    return ci_cell(row["step_ms"], row["step_ms_ci_lo"], row["step_ms_ci_hi"])


def range_cell(row: dict[str, Any]) -> str:
    """'1.200–1.300': the range of the repeats' median steps."""
    if row["step_ms_min"] is None:
        return "–"
    return f"{row['step_ms_min']:.3f}–{row['step_ms_max']:.3f}"


def accuracy_cell(row: dict[str, Any]) -> str:
    """'0.9541 ± 0.0021': mean test accuracy over the repeats (seeds) ± their sd."""
    sd = row["test_accuracy_sd"]
    return f"{row['test_accuracy']:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")


def rss_cell(row: dict[str, Any]) -> str:
    return num(row["peak_rss_bytes"] / 2**20 if row["peak_rss_bytes"] else None, ",.0f")


def gpu_cell(row: dict[str, Any]) -> str:
    gpu = row.get("gpu_peak_bytes")
    return num(gpu / 2**20 if gpu else None, ",.1f")


def ttt_cell(row: dict[str, Any]) -> str:
    """Time to target in seconds, or why there is none."""
    if row["validation"] == "end_only":
        return "n/a (no per-epoch validation)"
    if row["time_to_target_s"] is None:
        return "not reached"
    return f"{row['time_to_target_s']:.1f} ({row['reached_target']}/{row['repeats_ok']})"


def variant_cell(row: dict[str, Any]) -> str:
    """The id, marked when it is the A/A control's second arm."""
    return f"{row['variant_id']} (A/A control)" if row["control"] else row["variant_id"]


def headline_row(
    row: dict[str, Any],
    judgement: dict[str, Any] | None,
    *,
    time_to_target: bool = True,
    peak_rss: bool = True,
) -> dict[str, str]:
    """The few columns people look for; fits GitHub's content width (checked in a browser).

    ``time_to_target`` and ``peak_rss`` False leave those columns out: for a run where no variant
    filled them (see ``filled_columns``), they would read "not reached" or "–" in every row.
    """
    out = {"variant": variant_cell(row)}
    if row["status"] != "ok":
        return out | {"step ms [95% CI]": f"{row['status']}: {first_line(row['reason'], 60)}"}
    c = judgement["comparison"] if judgement else None
    if judgement is None:
        versus = "baseline"
    elif c is None:
        versus = judgement["step_verdict"]
    else:
        r = c.step_ratio
        versus = f"{r.point:.2f}× [{r.lo:.2f}–{r.hi:.2f}] {judgement['step_verdict']}"
    return out | {
        "step ms [95% CI]": step_cell(row),
        "step vs baseline": versus,
        "samples/s": num(row["samples_per_s"], ",.0f"),
        "test acc (mean ± sd)": accuracy_cell(row),
        **({f"time to {row['target_accuracy']:g} s": ttt_cell(row)} if time_to_target else {}),
        "params KB": kib(row["param_bytes"]),
        **({"peak RSS MiB": rss_cell(row)} if peak_rss else {}),
    }


def filled_columns(rows: list[dict[str, Any]]) -> dict[str, bool]:
    """Whether any variant has a time to target and a peak RSS: headline_row's optional columns."""
    ok = [r for r in rows if r["status"] == "ok"]
    return {
        "time_to_target": any(r["time_to_target_s"] is not None for r in ok),
        "peak_rss": any(r["peak_rss_bytes"] for r in ok),
    }


def display_row(row: dict[str, Any], gpu_memory: bool = False) -> dict[str, str]:
    """Every figure of a row, for the full table (units in the headers).

    ``gpu_memory`` adds the GPU allocator's peak, for runs where some variant measured one.
    """
    out = {
        "variant": variant_cell(row),
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
        return out | {"note": first_line(row["reason"])}
    cv = row["step_ms_cv"]
    return out | {
        "median step ms [95% CI]": step_cell(row),
        "repeat medians ms": range_cell(row),
        "p10–p90 ms": f"{row['step_ms_p10']:.3f}–{row['step_ms_p90']:.3f}",
        "CV %": "–" if cv is None else f"{100 * cv:.1f}",
        "wall ms/step": num(row["wall_step_ms"], ".3f"),
        "first step ms": num(row["first_step_ms"], ".0f"),
        "samples/s": num(row["samples_per_s"], ",.0f"),
        "train s/epoch": num(row["train_s_per_epoch"], ".2f"),
        "val s/epoch": num(row["val_s_per_epoch"], ".2f"),
        "test acc (mean ± sd)": accuracy_cell(row),
        f"time to {row['target_accuracy']:g} s": ttt_cell(row),
        "params KB": kib(row["param_bytes"]),
        "Adam state KB": kib(row["optimizer_bytes"]),
        "activations KB/batch (est.)": kib(row["activation_bytes_est"]),
        "peak RSS MiB": rss_cell(row),
        **({"GPU peak MiB": gpu_cell(row)} if gpu_memory else {}),
        "GFLOP/s": num(row["achieved_flops_per_s"] / 1e9, ".2f"),
        "% of peak": num(row["pct_of_peak"], ".1f"),
        "repeats ok": f"{row['repeats_ok']}/{row['repeats']}",
        "note": "",
    }
