"""Reports are pure functions of records: golden files from committed fixture records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import report
from bench.records import RecordError, read_records

FIXTURES = Path(__file__).parent / "fixtures"
RECORDS = FIXTURES / "records.jsonl"


def assert_golden(actual: str, name: str) -> None:
    """Compare with tests/fixtures/<name>; UPDATE_GOLDEN=1 rewrites it (review the diff!)."""
    path = FIXTURES / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual)
    assert actual == path.read_text(), f"{name} differs; if intended, rerun with UPDATE_GOLDEN=1"


def test_report_markdown_matches_golden_file():
    assert_golden(report.render_markdown(read_records(RECORDS)), "REPORT.md")


def test_report_shows_every_status_with_its_reason():
    text = report.render_markdown(read_records(RECORDS))
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
    csv_path = report.write_report(RECORDS, tmp_path, fmt="csv")
    json_path = report.write_report(RECORDS, tmp_path, fmt="json")
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
