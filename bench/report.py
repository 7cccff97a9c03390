"""REPORT.md from a records file alone (pandas + tabulate); never imports TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench import aggregate
from bench.records import probe_records, read_records, variant_records

FORMATS = ("md", "csv", "json")


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def _table(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, disable_numparse=True)


def header(records: list[dict[str, Any]]) -> str:
    """When, what, where: the facts a reader needs before trusting any number below."""
    first = records[0]
    variants = variant_records(records)
    machine, commit = first["machine"], first["commit"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    times = sorted(r["created_utc"] for r in records)
    data = next((r["data"] for r in variants if r.get("data")), None)
    data_line = (
        f"{data['source']} ({data['location']}), sha256 verified: {data['sha256_verified']}"
        if data
        else "–"
    )
    commit_line = f"`{commit['id'] or 'unknown'}`" + (
        " (with uncommitted changes)" if commit.get("dirty") else ""
    )
    repeats = max((r["repeat"] for r in variants), default=0) + 1
    settings = variants[0]["settings"] if variants else {}
    gpus = (
        ", ".join(next((p["probe"]["gpus"] for p in probe_records(records)), []))
        or "none visible to TensorFlow"
    )
    lines = [
        "# mnist-bench report",
        "",
        f"- **Run:** `{first['run']['id']}` — profile `{first['run']['profile']}`, "
        f"{len({r['variant_id'] for r in variants})} variants × up to {repeats} repeats, "
        f"{times[0]} → {times[-1]} (UTC)",
        f"- **Machine:** {machine['cpu_model']}, {machine['cpu_cores']} cores, "
        f"{_fmt_bytes(machine.get('memory_bytes'))} RAM, {machine['system']} {machine['machine']}; GPU: {gpus}",
        f"- **Versions:** Python {machine['python']}, {versions}",
        f"- **Commit:** {commit_line}",
        f"- **Data:** {data_line}",
        f"- **Step time:** wall time between consecutive `on_train_batch_end` callbacks "
        f"(`time.perf_counter`; Keras has synchronised the step's outputs by then), first "
        f"{settings.get('warmup_steps', '?')} steps of epoch 1 excluded as warm-up; the first "
        "(trace) step is reported on its own. Per repeat: median and p10–p90 over its steps. "
        "Across repeats: the median of the repeat medians, and their min–max range.",
        "- **Cross-check:** `wall ms/step` = training wall time of all epochs, less the first "
        "(trace) step, ÷ the remaining steps; it includes every per-step cost the median filters out.",
    ]
    return "\n".join(lines)


def model_section(records: list[dict[str, Any]]) -> str:
    """The reference model's layers and memory, from the first successful record."""
    ok = [r for r in variant_records(records) if r["status"] == "ok"]
    if not ok:
        return "## Model\n\nNo variant finished, so no model was built."
    model = ok[0]["model"]
    layers = pd.DataFrame(
        [
            {
                "layer (type)": f"{x['layer']} ({x['type']})",
                "output shape": x["output_shape"],
                "params": f"{x['params']:,}",
            }
            for x in model["layers"]
        ]
    )
    policies = sorted({(r["variant"]["precision"], tuple(r["model"]["param_dtypes"])) for r in ok})
    dtype_note = "; ".join(f"{p}: variables {', '.join(d)}" for p, d in policies)
    return "\n".join(
        [
            "## Model",
            "",
            _table(layers),
            "",
            f"Total params: **{model['params']:,}** = {model['param_bytes']:,} B "
            f"(**{model['param_bytes'] / 1024:.2f} KB**, KB = 1024 B as Keras prints). "
            f"Variable dtypes by policy — {dtype_note}. Mixed policies compute the hidden layers in "
            "16 bits but keep every variable in float32, so parameter memory does not halve; the "
            "output layer (softmax) computes in float32.",
        ]
    )


def summary_section(records: list[dict[str, Any]]) -> str:
    """One row per variant, skipped/failed ones included with their reason."""
    rows = aggregate.variant_rows(variant_records(records))
    table = pd.DataFrame([aggregate.display_row(r) for r in rows])
    return "## All variants\n\n" + _table(table)


def curves_section(records: list[dict[str, Any]]) -> str:
    """Per-epoch loss/accuracy of each variant's first successful repeat."""
    out = ["## Per-epoch curves (first successful repeat)"]
    for rec in variant_records(records):
        if rec["status"] != "ok" or rec["repeat"] != min(
            r["repeat"]
            for r in variant_records(records)
            if r["variant_id"] == rec["variant_id"] and r["status"] == "ok"
        ):
            continue
        acc, timing = rec["accuracy"], rec["timing"]
        df = pd.DataFrame(
            {
                "epoch": range(1, len(acc["loss"]) + 1),
                "loss": acc["loss"],
                "accuracy": acc["accuracy"],
                "val_loss": acc["val_loss"],
                "val_accuracy": acc["val_accuracy"],
                "train s": timing["train_s_per_epoch"],
                "validation s": timing["val_s_per_epoch"],
            }
        )
        out += [
            "",
            f"**{rec['variant_id']}**",
            "",
            _table(df.round(4).astype(object).where(df.notna(), "–")),
        ]
    return "\n".join(out)


def render_markdown(records: list[dict[str, Any]]) -> str:
    """The whole REPORT.md as a string; a pure function of the records."""
    sections = [
        header(records),
        model_section(records),
        summary_section(records),
        curves_section(records),
    ]
    return "\n\n".join(sections) + "\n"


def write_report(results: Path, out_dir: Path, fmt: str = "md") -> Path:
    """Render results into out_dir (REPORT.md, results.csv or summary.json); returns the path."""
    records = read_records(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        path = out_dir / "REPORT.md"
        path.write_text(render_markdown(records))
    elif fmt == "csv":
        path = out_dir / "summary.csv"
        pd.DataFrame(aggregate.variant_rows(variant_records(records))).to_csv(path, index=False)
    elif fmt == "json":
        path = out_dir / "summary.json"
        path.write_text(
            json.dumps(aggregate.variant_rows(variant_records(records)), indent=2) + "\n"
        )
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
    return path
