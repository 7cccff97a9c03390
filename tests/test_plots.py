"""The plots draw the run summary's figures: what each figure holds, read from its artists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.records import read_records
from bench.report import aggregate, markdown, plots

RECORDS = Path(__file__).parent / "fixtures" / "records.jsonl"


@pytest.fixture
def drawn(monkeypatch) -> Iterator[list[Any]]:
    """Every figure a plot function saves, kept open instead of written and closed."""
    figures: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    yield figures
    for fig in figures:
        plots.plt.close(fig)


@pytest.fixture(scope="module")
def summary() -> aggregate.RunSummary:
    return aggregate.summarize_run(read_records(RECORDS))


def _ok(summary: aggregate.RunSummary) -> list[dict[str, Any]]:
    return [r for r in summary.rows if r["status"] == "ok" and not r["control"]]


def _points(line: Any) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]


def _curves(ax: Any) -> dict[str, list[tuple[float, float]]]:
    """Each labelled line of an axes as its (x, y) points."""
    return {line.get_label(): _points(line) for line in ax.lines if line.get_label()[0] != "_"}


def _errorbars(ax: Any) -> dict[str, list[tuple[float, float, float, float]]]:
    """Each labelled error-bar line as (x, y, bar's low end, bar's high end) per point."""
    out = {}
    for c in ax.containers:
        data_line, _, (bars,) = c.lines
        ends = [(float(seg[0][1]), float(seg[1][1])) for seg in bars.get_segments()]
        out[c.get_label()] = [(*xy, *e) for xy, e in zip(_points(data_line), ends, strict=True)]
    return out


def test_step_time_plot_draws_each_rows_step_and_throughput_by_batch(drawn, summary):
    """Bugs: a line drawn from another column (wall ms/step, the first step), error bars that are
    not the step's 95% CI (or its throughput's, inverted), rows of another validation mode mixed
    into the line, batches out of order, or a failed variant plotted."""
    rows = _ok(summary)
    plots.step_time_vs_batch(rows, "per_epoch", Path("unused.png"))
    (fig,) = drawn
    ax_step, ax_rate = fig.axes
    step: dict[str, list[tuple[float, ...]]] = {}
    rate: dict[str, list[tuple[float, ...]]] = {}
    for r in sorted(rows, key=lambda r: r["batch_size"]):
        if r["validation"] == "per_epoch":
            label = f"{r['precision']}, {r['device']}"  # one backend: not in the label
            lo, hi = r["step_ms_ci_lo"], r["step_ms_ci_hi"]
            step.setdefault(label, []).append((r["batch_size"], r["step_ms"], lo, hi))
            samples = 1000 * r["batch_size"]  # a step's CI bounds the throughput's the other way
            rate.setdefault(label, []).append(
                (r["batch_size"], r["samples_per_s"], samples / hi, samples / lo)
            )
    got_step, got_rate = _errorbars(ax_step), _errorbars(ax_rate)
    assert got_step.keys() == step.keys() and got_rate.keys() == rate.keys()
    for label in step:
        assert got_step[label] == [pytest.approx(p) for p in step[label]], label
        assert got_rate[label] == [pytest.approx(p) for p in rate[label]], label
    assert len(step["float32, cpu"]) == 2  # batch 100 and 500: a line, not a point


def test_train_vs_validation_stacks_each_rows_seconds(drawn, summary):
    """Bugs: validation bars starting at 0 (drawn over training instead of after it), end_only's
    once-only evaluation counted per epoch, or training seconds not scaled by the epochs."""
    rows = _ok(summary)
    plots.train_vs_validation(rows, Path("unused.png"))
    (fig,) = drawn
    (ax,) = fig.axes
    bars = [(float(p.get_x()), float(p.get_width())) for p in ax.patches]
    train = [r["train_s_per_epoch"] * r["epochs"] for r in rows]
    val = [
        r["final_eval_s"] if r["validation"] == "end_only" else r["val_s_per_epoch"] * r["epochs"]
        for r in rows
    ]
    assert bars == [*((0.0, t) for t in train), *zip(train, val, strict=True)]
    assert [t.get_text() for t in ax.get_yticklabels()] == [r["variant_id"] for r in rows]


def test_time_to_target_draws_the_rows_times_and_names_the_ones_never_reached(drawn, summary):
    """Bugs: a bar drawn for a variant that never reached the target, or the wrong row's time."""
    rows = _ok(summary)
    plots.time_to_target(rows, Path("unused.png"))
    (fig,) = drawn
    (ax,) = fig.axes
    widths = [float(p.get_width()) for p in ax.patches]
    assert widths == [r["time_to_target_s"] or 0.0 for r in rows]
    assert any(widths) and not all(widths)  # the fixture has both kinds
    notes = [t.get_text().strip() for t in ax.texts]
    assert len(notes) == sum(r["time_to_target_s"] is None for r in rows)


def test_accuracy_curves_are_each_variants_first_successful_repeat(drawn, summary):
    """Bugs: a later repeat drawn (or one per repeat), or epochs numbered from 0."""
    plots.val_accuracy_curves(summary.curves, Path("unused.png"))
    (fig,) = drawn
    (ax,) = fig.axes
    first: dict[str, list[float]] = {}
    for rec in read_records(RECORDS):
        if (
            rec["kind"] == "variant"
            and rec["status"] == "ok"
            and rec["accuracy"]["val_accuracy"][0] is not None
        ):
            first.setdefault(rec["variant_id"], rec["accuracy"]["val_accuracy"])
    expected = {v: [(i + 1, a) for i, a in enumerate(acc)] for v, acc in first.items()}
    curves = {k: v for k, v in _curves(ax).items() if not k.startswith("target")}
    assert curves == expected


def test_every_plot_written_is_linked_from_the_report(tmp_path):
    """Bug: a plot written beside REPORT.md that the report never shows, or a link to none."""
    path = markdown.write_report(RECORDS, tmp_path)
    written = {p.name for p in tmp_path.glob("*.png")}
    linked = set(re.findall(r"\]\(([^)]+\.png)\)", path.read_text()))
    assert written and written == linked
