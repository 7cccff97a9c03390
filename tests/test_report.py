"""Reports are pure functions of records: golden files from committed fixture records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.records import RecordError, read_records
from bench.report import markdown

FIXTURES = Path(__file__).parent / "fixtures"
RECORDS = FIXTURES / "records.jsonl"


def assert_golden(actual: str, name: str) -> None:
    """Compare with tests/fixtures/<name>; UPDATE_GOLDEN=1 rewrites it (review the diff!)."""
    path = FIXTURES / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual)
    assert actual == path.read_text(), f"{name} differs; if intended, rerun with UPDATE_GOLDEN=1"


def test_report_markdown_matches_golden_file():
    assert_golden(markdown.render_markdown(read_records(RECORDS)), "REPORT.md")


def test_report_shows_every_status_with_its_reason():
    text = markdown.render_markdown(read_records(RECORDS))
    for needle in (
        "| skipped",
        "no GPU visible",
        "| failed",
        "injected failure (test)",
        "| diverged",
        "non-finite",
        "not reached",
    ):
        assert needle in text, needle


def test_csv_and_json_exports(tmp_path):
    csv_path = markdown.write_report(RECORDS, tmp_path, fmt="csv")
    json_path = markdown.write_report(RECORDS, tmp_path, fmt="json")
    rows = json.loads(json_path.read_text())
    assert len(csv_path.read_text().splitlines()) == len(rows) + 1
    assert {r["status"] for r in rows} == {"ok", "skipped", "failed", "diverged"}


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_json_line_is_named(tmp_path):
    good = RECORDS.read_text().splitlines()[0]
    path = _write(tmp_path, [good, "{not json"])
    with pytest.raises(RecordError, match=r"results.jsonl:2: not valid JSON"):
        read_records(path)


def test_unknown_schema_version_is_named(tmp_path):
    record = json.loads(RECORDS.read_text().splitlines()[1]) | {"schema_version": 99}
    path = _write(tmp_path, [json.dumps(record)])
    with pytest.raises(RecordError, match=r"results.jsonl:1: schema_version 99 is not supported"):
        read_records(path)


def test_missing_fields_are_named(tmp_path):
    record = json.loads(RECORDS.read_text().splitlines()[1])
    del record["timing"]
    path = _write(tmp_path, [json.dumps(record)])
    with pytest.raises(RecordError, match=r"results.jsonl:1: missing field\(s\) \['timing'\]"):
        read_records(path)


def test_empty_file_has_no_records(tmp_path):
    with pytest.raises(RecordError, match="holds no records"):
        read_records(_write(tmp_path, [""]))


def _rows():
    from bench.report import aggregate

    records = read_records(RECORDS)
    return records, aggregate.variant_rows(records, aggregate.peak_flops(records))


def test_findings_quote_the_table_figures():
    from bench.report import aggregate
    from bench.report.findings import findings

    records, rows = _rows()
    text = "\n".join(findings(rows, aggregate.baseline_id(records)))
    by_id = {r["variant_id"]: r for r in rows}
    best = max((r for r in rows if r["status"] == "ok"), key=lambda r: r["samples_per_s"])
    assert f"`{best['variant_id']}` trains {best['samples_per_s']:,.0f} samples/s" in text
    base = by_id["bs100-per_epoch-float32-cpu-e2"]
    assert f"costs {base['val_s_per_epoch']:.2f} s per epoch" in text
    assert "mixed_bfloat16" in text and "variables stay float32" in text
    assert "3 variant(s) produced no measurement" in text


def test_no_variant_reaching_the_target_is_said_plainly():
    from bench.report.findings import findings

    _, rows = _rows()
    unreached = [r | {"time_to_target_s": None} for r in rows]
    assert any(
        "No variant reached validation accuracy 0.9 within 2 epochs" in f
        for f in findings(unreached, None)
    )


def test_axis_ratios_are_variant_over_baseline():
    from bench.report import aggregate
    from bench.report.axes import axis_comparisons, speed_phrase

    records, rows = _rows()
    comparisons = axis_comparisons(rows, aggregate.baseline_id(records))
    assert set(comparisons) == {"batch_size", "validation", "precision", "device"}
    (mixed,) = comparisons["precision"]
    assert mixed["step_ratio"] == pytest.approx(mixed["row"]["step_ms"] / mixed["base"]["step_ms"])
    assert speed_phrase(1.24) == "1.24× slower"
    assert speed_phrase(0.5) == "2.00× faster"
    assert speed_phrase(1.001) == "same (1.00×)"


def test_compare_flags_only_differences_beyond_the_repeat_spread():
    from bench.report.compare import render_compare, verdict

    a = {"step_ms_min": 1.0, "step_ms_max": 1.1}
    assert verdict(a, {"step_ms_min": 1.2, "step_ms_max": 1.3}) == "**slower**"
    assert verdict(a, {"step_ms_min": 0.8, "step_ms_max": 0.9}) == "**faster**"
    assert verdict(a, {"step_ms_min": 1.05, "step_ms_max": 1.3}) == "within noise"
    assert verdict(a, {"step_ms_min": None, "step_ms_max": None}) == "no spread (1 repeat)"
    records = read_records(RECORDS)
    slower = [
        r
        | {
            "timing": r["timing"]
            | {"step_ms_raw": [[2 * s for s in epoch] for epoch in r["timing"]["step_ms_raw"]]}
        }
        if r["kind"] == "variant" and r["status"] == "ok"
        else r
        for r in records
    ]
    text = render_compare(records, slower, "a", "b")
    assert "| bs100-per_epoch-float32-cpu-e2" in text and "2.000×" in text and "**slower**" in text
    assert "not comparable" in text  # failed/skipped variants are listed, not dropped


def test_plots_are_written_and_not_empty(tmp_path):
    path = markdown.write_report(RECORDS, tmp_path)
    names = {p.name for p in tmp_path.glob("*.png")}
    assert names == {
        "step_time_vs_batch.png",
        "val_accuracy.png",
        "time_to_target.png",
        "train_vs_validation.png",
    }
    for name in names:
        assert (tmp_path / name).stat().st_size > 10_000
        assert f"]({name})" in path.read_text()


def test_committed_reference_report_regenerates_byte_for_byte():
    reference = Path(__file__).parent.parent / "reports" / "reference"
    records = read_records(reference / "results.jsonl")
    assert markdown.render_markdown(records) == (reference / "REPORT.md").read_text()
    for name, _ in markdown.PLOTS:
        assert (reference / name).stat().st_size > 10_000, name
