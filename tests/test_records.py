"""The record contract: envelope, reading with line numbers, upgrading version 1, merging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import records, stats
from bench.outputs import OutputError
from bench.plan.variant import FIELD_NAMES

FIXTURE = Path(__file__).parent / "fixtures" / "records.jsonl"


def _v1_ok() -> dict:
    """The first successful version-1 record of the fixture (a real run)."""
    for line in FIXTURE.read_text().splitlines():
        rec = json.loads(line)
        if rec["kind"] == "variant" and rec["status"] == "ok":
            assert rec["schema_version"] == 1
            return rec
    raise AssertionError("fixture has no ok record")


def test_envelope_carries_version_kind_run_time_machine_and_commit():
    env = records.envelope("probe", {"id": "r"}, {"cpu_model": "X"}, {"id": None})
    assert env["schema_version"] == records.SCHEMA_VERSION == 4
    assert env["kind"] == "probe" and env["run"] == {"id": "r"}
    assert env["created_utc"].endswith("+00:00")


def test_version_1_is_upgraded_on_load_and_its_statistics_are_derived_again():
    v1 = _v1_ok()
    v2 = records.upgrade(v1)
    assert v2["schema_version"] == records.SCHEMA_VERSION
    assert "step_ms" not in v2["timing"] and "time_to_target_s" not in v2["accuracy"]
    assert v2["timing"]["step_ms_raw"] == v1["timing"]["step_ms_raw"]  # the raw data stays
    derived = stats.repeat_stats(v2)
    # Version 1 froze these in the child from unrounded times; raw times are kept to 0.1 µs.
    assert derived["step_ms"]["median"] == pytest.approx(
        v1["timing"]["step_ms"]["median"], abs=1e-3
    )
    assert derived["wall_step_ms"] == pytest.approx(v1["timing"]["wall_step_ms"], abs=1e-3)
    assert derived["steps_timed"] == v1["timing"]["steps_timed"]
    assert derived["time_to_target_s"] == v1["accuracy"]["time_to_target_s"]


def _paired_ok() -> dict:
    rec = records.upgrade(_v1_ok())
    rec["timing"]["pauses"] = [[5, 0.2], [12, 0.31]]
    rec["pairing"] = {
        "set": "g0-r1", "group": 0, "round": 1, "extra": False, "role": "arm",
        "arms": ["a", rec["variant_id"]], "block_s": 0.1, "rounds": 14, "turns": [1, 0, 1],
        "startup_s": 9.5, "set_s": 31.2,
    }  # fmt: skip
    return rec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["pairing"].update(role="partner"), "'pairing.role' must be one of"),
        (lambda r: r["pairing"].pop("set"), r"missing field\(s\) \['pairing.set'\]"),
        (lambda r: r["pairing"].update(turns=[-1]), "'pairing.turns' must be a list of integers"),
        (lambda r: r["timing"].update(pauses=[[5]]), "'timing.pauses' must be a list of"),
        (lambda r: r["timing"].update(pauses=[[5, "x"]]), "'timing.pauses' must be a list of"),
    ],
)
def test_an_arm_of_a_paired_set_is_checked_field_by_field(change, message):
    rec = _paired_ok()
    records.check_record(rec, "r:1")  # the untouched one is fine
    change(rec)
    with pytest.raises(records.RecordError, match=message):
        records.check_record(rec, "r:1")


def test_a_version_2_record_reads_as_the_current_version_unchanged():
    v2 = records.upgrade(_v1_ok()) | {"schema_version": 2}
    assert records.upgrade(v2) == v2 | {"schema_version": records.SCHEMA_VERSION}


def test_read_numbered_gives_each_record_its_line(tmp_path):
    lines = FIXTURE.read_text().splitlines()[:3]
    path = tmp_path / "r.jsonl"
    path.write_text(lines[0] + "\n\n" + lines[1] + "\n" + lines[2] + "\n")
    assert [n for n, _ in records.read_numbered(path)] == [1, 3, 4]


def test_a_statistic_is_derived_from_raw_steps_not_read_from_the_record():
    rec = records.upgrade(_v1_ok())
    rec["timing"]["step_ms_raw"] = [[100.0] + [2.0] * 30, [3.0] * 31]
    rec["settings"]["warmup_steps"] = 1
    d = stats.repeat_stats(rec)
    assert d["first_step_ms"] == 100.0
    assert d["steps_timed"] == 61  # 62 calls, the first one excluded
    assert d["step_ms"]["median"] == 3.0  # 30 at 2 ms, 31 at 3 ms


def test_merge_keeps_file_order_and_refuses_to_overwrite(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    lines = FIXTURE.read_text().splitlines()
    a.write_text("\n".join(lines[:4]) + "\n")
    b.write_text("\n".join(lines[4:8]) + "\n")
    out = tmp_path / "all.jsonl"
    merged = records.merge_files([a, b], out)
    assert len(merged) == 8 and records.read_records(out) == merged
    with pytest.raises(OutputError, match="already exists"):
        records.merge_files([a, b], out)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"matmul_n": None}, "probe.matmul_n"),  # found by tests/test_properties.py
        ({"matmul_n": []}, "probe.matmul_n"),
        ({"trials": [{"device": "cpu", "dtype": "float32", "n": [], "flops_per_s": 1.0}]},
         "probe.trials"),
    ],
)  # fmt: skip
def test_a_probe_with_fields_readers_cannot_use_is_refused_by_name(tmp_path, change, field):
    probe = next(
        r for r in map(json.loads, FIXTURE.read_text().splitlines()) if r["kind"] == "probe"
    )
    probe["probe"] |= change
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(probe) + "\n")
    with pytest.raises(records.RecordError, match=f"'{field}' must be"):
        records.read_records(path)


def _attempt(record: dict, status: str, **run: str) -> dict:
    """Another attempt of `record`'s job (or, with other run fields, another run's job)."""
    failed = {"status": status, "reason": None if status == "ok" else "killed (test)"}
    return {**record, **failed, "run": {**record["run"], **run}}


def test_readers_use_each_jobs_latest_attempt_and_history_stays_readable():
    probe, ok = records.read_records(FIXTURE)[:2]
    failed = _attempt(ok, "failed")
    other_run = _attempt(ok, "failed", id="another run")
    file = [probe, failed, other_run, ok]  # the retry (ok) was written last
    assert records.latest_attempts(file) == [probe, other_run, ok]
    assert records.variant_records(file) == [other_run, ok]  # what reports read
    assert records.variant_records(file, all_attempts=True) == [failed, other_run, ok]
    assert records.job_key(ok) == (ok["run"]["id"], "1/1", ok["variant_id"], 0)
    shard_2 = _attempt(ok, "ok", shard="2/2")  # a shared arm measured again by another shard
    assert records.variant_records([ok, shard_2]) == [ok, shard_2]


def test_merge_keeps_a_files_retries_but_refuses_a_job_in_two_files(tmp_path):
    probe, ok = records.read_records(FIXTURE)[:2]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    records.append_records(a, [probe, _attempt(ok, "failed"), ok])
    merged = records.merge_files([a], tmp_path / "all.jsonl")
    assert [r.get("status") for r in merged] == [None, "failed", "ok"]  # the history stays
    records.append_records(b, [ok])
    with pytest.raises(records.RecordError, match=r"is in both .*a.jsonl:3 and .*b.jsonl:1"):
        records.merge_records([a, b])
    with pytest.raises(records.RecordError, match="is in both"):
        records.merge_records([b, b])  # the same file given twice
    records.append_records(b, [_attempt(ok, "ok", id="another run")])
    with pytest.raises(records.RecordError, match=r"b.jsonl:1 and .*b.jsonl:2"):
        records.merge_records([b])  # two runs' jobs in one file: not a retry


def test_old_shapes_load_into_the_current_shape_in_one_place():
    """Bugs: a reader meeting a record without a backend section, a variant field, the target
    setting or probe trials (a KeyError, or a fallback repeated in every reader); the runner's
    ru_maxrss read as the job's own peak RSS; an upgrade that changes the record it was given or
    changes an already current record."""
    raw = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    loaded = records.read_records(FIXTURE)
    assert not any("backend" in r for r in raw) and raw[0]["kind"] == "probe"
    assert "trials" not in raw[0]["probe"]
    ((device, by_dtype),) = raw[0]["probe"]["peak_flops_per_s"].items()
    assert loaded[0]["probe"]["trials"] == [
        {"device": device, "dtype": dt, "n": raw[0]["probe"]["matmul_n"], "flops_per_s": v}
        for dt, v in by_dtype.items()
    ]
    for old, new in zip(raw, loaded, strict=True):
        assert new["schema_version"] == records.SCHEMA_VERSION
        assert records.upgrade(new) == new  # a current record gains nothing
        if new["kind"] != "variant":
            continue
        assert tuple(new["variant"]) == FIELD_NAMES
        assert new["settings"]["target_halfwidth"] == stats.DEFAULT_TARGET_HALFWIDTH
        if new["status"] == "ok":
            assert "peak_rss_source" not in old["memory"] and old["memory"]["peak_rss_bytes"]
            assert new["memory"]["peak_rss_bytes"] is None
            assert new["backend"] == {
                "name": "tensorflow",
                "version": old["machine"]["versions"]["tensorflow"],
                "jit_compile": {"requested": new["variant"]["jit_compile"], "resolved": None},
                "execution": records.LEGACY_EXECUTION[new["variant"]["jit_compile"] is True],
            }
    assert raw == [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
