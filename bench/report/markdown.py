"""REPORT.md (+ PNG plots) from a records file alone; never imports TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.records import probe_records, read_records, variant_records
from bench.report import aggregate
from bench.report.axes import axis_comparisons, describe, speed_phrase
from bench.report.findings import findings
from bench.report.tables import display_row, human_bytes, markdown_table

FORMATS = ("md", "csv", "json")
PLOTS = (
    ("step_time_vs_batch.png", "Step time and throughput vs batch size"),
    ("val_accuracy.png", "Validation accuracy per epoch"),
    ("time_to_target.png", "Time to the accuracy target"),
    ("train_vs_validation.png", "Training vs validation time"),
)


def environment_line(env: dict[str, Any] | None) -> list[str]:
    """Whether the run's environment matched the lock (records before the lock existed say nothing)."""
    if env is None:
        return []
    if env.get("lock") is None:
        return ["- **Environment:** not from a lock (no requirements.lock beside the source)"]
    lock = f"`{env['lock']}` (sha256 {env.get('lock_sha256', '?')})"
    if env.get("from_lock"):
        return [
            f"- **Environment:** from the lock: all {env.get('pins', '?')} pins of {lock} installed"
        ]
    differ = "; ".join(env.get("differ") or [])
    return [f"- **Environment:** not from the lock {lock}: {differ}"]


def header(records: list[dict[str, Any]]) -> str:
    """When, what, where and how: the facts a reader needs before trusting any number below."""
    first, variants, probes = records[0], variant_records(records), probe_records(records)
    machine, commit = first["machine"], first["commit"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    times = sorted(r["created_utc"] for r in records)
    data = next((r["data"] for r in variants if r.get("data")), None)
    data_line = (
        f"{data['source']} ({data['location']}), sha256 verified: {data['sha256_verified']}"
        if data
        else "–"
    )
    dirty = " (with uncommitted changes)" if commit.get("dirty") else ""
    repeats = max((r["repeat"] for r in variants), default=0) + 1
    warmup = variants[0]["settings"]["warmup_steps"] if variants else "?"
    gpus = ", ".join(probes[-1]["probe"]["gpus"] if probes else []) or "none visible to TensorFlow"
    peaks = aggregate.peak_flops(records)
    peak_line = ", ".join(
        f"{dev} {dt} {v / 1e9:,.1f} GFLOP/s" for (dev, dt), v in sorted(peaks.items())
    )
    matmul_n = probes[-1]["probe"]["matmul_n"] if probes else "?"
    lines = [
        "# mnist-bench report",
        "",
        f"- **Run:** `{first['run']['id']}` — profile `{first['run']['profile']}`, "
        f"{len({r['variant_id'] for r in variants})} variants × up to {repeats} repeats, "
        f"{times[0]} → {times[-1]} (UTC)",
        f"- **Machine:** {machine['cpu_model']}, {machine['cpu_cores']} cores, "
        f"{human_bytes(machine.get('memory_bytes'))} RAM, {machine['system']} {machine['machine']}; GPU: {gpus}",
        f"- **Versions:** Python {machine['python']}, {versions}",
        *environment_line(machine.get("environment")),
        f"- **Commit:** `{commit['id'] or 'unknown'}`{dirty}",
        f"- **Data:** {data_line}",
        f"- **Baseline:** `{aggregate.baseline_id(records)}` — comparisons and findings are against it.",
        "- **Step time:** wall time between consecutive `on_train_batch_end` callbacks "
        "(`time.perf_counter`; Keras has synchronised the step's outputs by then), first "
        f"{warmup} steps of epoch 1 excluded as warm-up; the first (trace) step is reported on its own. "
        "Each (variant, repeat) ran in a fresh process, repeats interleaved across variants.",
        "- **Cross-check:** `wall ms/step` = training wall time of all epochs, less the first "
        "(trace) step, ÷ the remaining steps; it includes every per-step cost the median filters out.",
        f"- **Machine peak:** dense {matmul_n}² matmul measured with TensorFlow in this run: "
        f"{peak_line or 'not measured'}. `% of peak` = achieved FLOP/s (matmul FLOPs of a training "
        "step ÷ median step time) ÷ the peak for the policy's compute dtype on that device.",
    ]
    return "\n".join(lines)


def findings_section(rows: list[dict[str, Any]], baseline: str | None) -> str:
    items = findings(rows, baseline)
    return "## Findings\n\n" + (
        "\n".join(f"- {f}" for f in items) if items else "No variant finished."
    )


def summary_section(rows: list[dict[str, Any]]) -> str:
    """One row per variant, skipped/failed ones included with their reason."""
    table = pd.DataFrame([display_row(r) for r in rows])
    note = (
        "`median step ms` is the median over repeats of each repeat's median step; brackets give the "
        "repeats' range, `CV %` their coefficient of variation, `p10–p90` the spread of steps within "
        "a repeat. Time to target counts training time only, until validation accuracy first reaches "
        "the target (`split` validates on held-out training images, not the test set); the bracket "
        "says how many repeats reached it. Parameter and Adam memory are the variables' bytes at their "
        "own dtype (float32 under every policy); activations are an estimate from the layer shapes; "
        "peak RSS is the whole child process, TensorFlow included."
    )
    return "## All variants\n\n" + markdown_table(table) + "\n\n" + note


def axes_section(rows: list[dict[str, Any]], baseline: str | None) -> str:
    """Per-axis tables: each value against the baseline, as ratios."""
    comparisons = axis_comparisons(rows, baseline) if baseline else {}
    title = "## Each axis against the baseline"
    if not comparisons:
        return f"{title}\n\nNo successful baseline variant, or no variant differing from it in one axis."
    out = [
        title,
        "",
        f"Ratios are variant ÷ baseline `{baseline}`; all but the named axis as in the baseline.",
    ]
    for axis, entries in comparisons.items():
        table = []
        for e in entries:
            row = e["row"]
            cells: dict[str, str] = {axis: str(e["value"]), "status": row["status"]}
            if row["status"] == "ok":
                cells |= {
                    "step ms (vs baseline)": f"{row['step_ms']:.3f} vs {e['base']['step_ms']:.3f}",
                    "step time": speed_phrase(e["step_ratio"]),
                    "samples/s ×": f"{e['samples_ratio']:.2f}",
                    "train s/epoch ×": f"{e['train_epoch_ratio']:.2f}",
                    "Δ test acc (pt)": f"{e['accuracy_delta_pt']:+.2f}",
                }
            table.append(cells | {"in words": describe(e)})
        out += ["", f"### {axis}", "", markdown_table(pd.DataFrame(table))]
    return "\n".join(out)


def plot_names(records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> set[str]:
    """Which plots have data: decided from records, so the markdown never depends on files."""
    if not any(r["status"] == "ok" for r in rows):
        return set()
    names = {"step_time_vs_batch.png", "time_to_target.png", "train_vs_validation.png"}
    ok = [r for r in variant_records(records) if r["status"] == "ok"]
    if any(a is not None for r in ok for a in r["accuracy"]["val_accuracy"]):
        names.add("val_accuracy.png")
    return names


def plots_section(available: set[str]) -> str:
    """Links to the PNGs written beside REPORT.md."""
    links = [f"![{title}]({name})" for name, title in PLOTS if name in available]
    return "## Plots\n\n" + ("\n\n".join(links) if links else "Nothing to plot.")


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
            markdown_table(layers),
            "",
            f"Total params: **{model['params']:,}** = {model['param_bytes']:,} B "
            f"(**{model['param_bytes'] / 1024:.2f} KB**, KB = 1024 B as Keras prints). "
            f"Variable dtypes by policy — {dtype_note}. Mixed policies compute the hidden layers in "
            "16 bits but keep every variable in float32, so parameter memory does not halve; the "
            "output layer (softmax) computes in float32.",
        ]
    )


def curves_section(records: list[dict[str, Any]]) -> str:
    """Per-epoch loss/accuracy/time of each variant's first successful repeat."""
    out = ["## Per-epoch curves (first successful repeat)"]
    seen: set[str] = set()
    for rec in variant_records(records):
        if rec["status"] != "ok" or rec["variant_id"] in seen:
            continue
        seen.add(rec["variant_id"])
        acc, timing = rec["accuracy"], rec["timing"]
        df = pd.DataFrame(
            {
                "epoch": [str(i) for i in range(1, len(acc["loss"]) + 1)],
                "loss": [f"{v:.4f}" for v in acc["loss"]],
                "accuracy": [f"{v:.4f}" for v in acc["accuracy"]],
                "val_loss": ["–" if v is None else f"{v:.4f}" for v in acc["val_loss"]],
                "val_accuracy": ["–" if v is None else f"{v:.4f}" for v in acc["val_accuracy"]],
                "train s": [f"{v:.2f}" for v in timing["train_s_per_epoch"]],
                "validation s": [f"{v:.2f}" for v in timing["val_s_per_epoch"]],
            }
        )
        out += ["", f"**{rec['variant_id']}** (repeat {rec['repeat']})", "", markdown_table(df)]
    return "\n".join(out)


def render_markdown(records: list[dict[str, Any]]) -> str:
    """The whole REPORT.md as a string; a pure function of the records."""
    rows = aggregate.variant_rows(records, aggregate.peak_flops(records))
    baseline = aggregate.baseline_id(records)
    sections = [
        header(records),
        findings_section(rows, baseline),
        summary_section(rows),
        axes_section(rows, baseline),
        plots_section(plot_names(records, rows)),
        model_section(records),
        curves_section(records),
    ]
    return "\n\n".join(sections) + "\n"


def write_plots(
    records: list[dict[str, Any]], rows: list[dict[str, Any]], out_dir: Path
) -> list[Path]:
    """Draw every plot that has data into out_dir."""
    from bench.report import plots  # matplotlib only when plots are wanted

    base = next((r for r in rows if r["variant_id"] == aggregate.baseline_id(records)), None)
    validation = base["validation"] if base else "per_epoch"
    drawn = [
        plots.step_time_vs_batch(rows, validation, out_dir / "step_time_vs_batch.png"),
        plots.val_accuracy_curves(variant_records(records), out_dir / "val_accuracy.png"),
        plots.time_to_target(rows, out_dir / "time_to_target.png"),
        plots.train_vs_validation(rows, out_dir / "train_vs_validation.png"),
    ]
    return [p for p in drawn if p is not None]


def write_report(results: Path, out_dir: Path, fmt: str = "md", plots: bool = True) -> Path:
    """Render results into out_dir (REPORT.md + PNGs, summary.csv or summary.json); returns the path."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
    records = read_records(results)
    rows = aggregate.variant_rows(records, aggregate.peak_flops(records))
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        path = out_dir / "summary.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
    elif fmt == "json":
        path = out_dir / "summary.json"
        path.write_text(json.dumps(rows, indent=2) + "\n")
    else:
        path = out_dir / "REPORT.md"
        path.write_text(render_markdown(records))
        if plots:
            write_plots(records, rows, out_dir)
    return path
