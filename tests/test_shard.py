"""Sharding a matrix over machines and merging the records back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import cli, records
from bench.outputs import OutputError
from bench.plan import shard
from bench.plan.matrix import build_matrix, load_profile
from bench.plan.settings import RunSettings
from bench.plan.shard import ShardError, parse_shard, plan_shards
from bench.plan.variant import Variant
from bench.records import RecordError, merge_files, merge_records
from bench.report import markdown
from bench.run import runner

FIXTURE = Path(__file__).parent / "fixtures" / "records.jsonl"


def _assignment(shards: list[shard.Shard]) -> list[set[str]]:
    return [{v.id for v in s.variants} for s in shards]


@pytest.mark.parametrize(
    ("text", "expected"), [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))]
)
def test_shard_spec_parses(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/2", "need 1 <= I <= N, got I=0, N=2"),
        ("3/2", "need 1 <= I <= N, got I=3, N=2"),
        ("1/0", "need 1 <= I <= N"),
        ("1", "expected I/N"),
        ("a/b", "expected I/N"),
        ("-1/2", "expected I/N"),
    ],
)
def test_bad_shard_specs_are_named(text, message):
    with pytest.raises(ShardError, match=message):
        parse_shard(text)


@pytest.mark.parametrize("profile", ["quick", "default", "full", "distribute"])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_every_variant_lands_in_exactly_one_shard_and_every_shard_has_the_shared_arms(
    profile, count
):
    variants = load_profile(profile).variants()
    shared = shard.shared_arms(variants)
    assert shared[0] == variants[0] and all(v.control for v in shared[1:])
    shards = plan_shards(variants, count)
    ids = [v.id for s in shards for v in s.variants if v not in shared or count == 1]
    assert sorted(ids) == sorted(v.id for v in variants if v not in shared or count == 1)
    for s in shards:  # each shard keeps the matrix order, the baseline (and control) first
        assert list(s.variants) == [v for v in variants if v in s.variants]
        if count > 1:  # measured beside its own variants: no ratio pairs across machines
            assert list(s.variants[: len(shared)]) == shared


def test_assignment_does_not_depend_on_the_order_of_the_toml():
    spec = {
        "matrix": {"mode": "cross"},
        "axes": {
            "batch_size": [32, 128, 512, 2048],
            "validation": ["per_epoch", "end_only", "split", "freq"],
            "precision": ["float32", "mixed_bfloat16"],
        },
    }
    shuffled = {
        "matrix": {"mode": "cross"},
        "axes": {
            "precision": ["mixed_bfloat16", "float32"],
            "validation": ["freq", "split", "per_epoch", "end_only"],
            "batch_size": [512, 32, 2048, 128],
        },
    }
    a, b = build_matrix("a", spec).variants(), build_matrix("b", shuffled).variants()
    assert [v.id for v in a] != [v.id for v in b]  # really a different order
    b = [a[0], *(v for v in b if v != a[0])]  # the same baseline (every shard's shared arm)
    for count in (2, 3, 5):
        assert _assignment(plan_shards(a, count)) == _assignment(plan_shards(b, count))


def test_shards_are_balanced_by_expected_cost():
    variants = load_profile("full").variants()
    shards = plan_shards(variants, 4, repeats=3)
    loads = [s.expected_s for s in shards]
    biggest_job = max(shard.expected_cost_s(v, 3) for v in variants)
    # Greedy longest-first never leaves shards further apart than one job.
    assert max(loads) - min(loads) <= biggest_job
    # Cost follows the work: a batch-32 variant (1,875 steps) costs more than a batch-2048 one.
    assert shard.expected_cost_s(Variant(batch_size=32)) > shard.expected_cost_s(
        Variant(batch_size=2048)
    )
    assert shard.expected_cost_s(Variant(strategy="multi_worker")) > shard.expected_cost_s(
        Variant()
    )


def test_more_shards_than_variants_leaves_some_with_the_baseline_alone():
    variants = load_profile("quick").variants()  # 4 variants, no control: 3 to deal
    shards = plan_shards(variants, 5)
    assert [len(s.variants) for s in shards].count(1) == 2  # just the baseline
    assert all(s.variants[0] == variants[0] for s in shards)


def _write(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _fixture_halves(tmp_path: Path) -> tuple[Path, Path, list[dict[str, Any]]]:
    """The fixture records split as two shards would write them: a probe each, variants apart."""
    recs = records.read_records(FIXTURE)
    probe = records.probe_records(recs)[0]
    ids = sorted({r["variant_id"] for r in records.variant_records(recs)})
    first = set(ids[: len(ids) // 2])
    halves: list[list[dict[str, Any]]] = [[], []]
    for k, part in enumerate(halves):
        spec = f"{k + 1}/2"
        part.append(probe | {"run": probe["run"] | {"shard": spec}})
        part += [
            r | {"run": r["run"] | {"shard": spec}}
            for r in records.variant_records(recs)
            if (r["variant_id"] in first) == (k == 0)
        ]
    a = _write(tmp_path / "a.jsonl", halves[0])
    b = _write(tmp_path / "b.jsonl", halves[1])
    return a, b, recs


def test_merge_keeps_every_record_and_every_probe(tmp_path):
    a, b, original = _fixture_halves(tmp_path)
    merged = merge_files([a, b], tmp_path / "all.jsonl")
    assert records.read_records(tmp_path / "all.jsonl") == merged
    key = lambda r: (r["variant_id"], r["repeat"])  # noqa: E731
    assert sorted(map(key, records.variant_records(merged))) == sorted(
        map(key, records.variant_records(original))
    )
    assert len(records.probe_records(merged)) == 2  # one per shard's machine
    assert records.missing_shards(merged) == []
    text = markdown.render_markdown(merged)
    for vid in {r["variant_id"] for r in records.variant_records(original)}:
        assert f"| {vid} " in text


def test_merge_keeps_each_shards_own_baseline_records_but_refuses_a_shared_arm_twice(tmp_path):
    # Every shard measures the baseline itself: its (variant, repeat) is in both files, once per
    # shard. That is not a duplicate; the same shard's baseline twice is.
    recs = records.read_records(FIXTURE)
    base = records.variant_records(recs)[0]
    one = [base | {"run": base["run"] | {"shard": "1/2", "baseline": base["variant_id"]}}]
    two = [base | {"run": base["run"] | {"shard": "2/2", "baseline": base["variant_id"]}}]
    merged = merge_files(
        [_write(tmp_path / "1.jsonl", one), _write(tmp_path / "2.jsonl", two)], tmp_path / "m.jsonl"
    )
    assert len(merged) == 2
    with pytest.raises(RecordError, match="is in both"):
        records.merge_records([tmp_path / "1.jsonl", _write(tmp_path / "1b.jsonl", one)])


def test_merge_refuses_a_job_present_in_two_files(tmp_path):
    a, _, _ = _fixture_halves(tmp_path)
    copy = tmp_path / "copy.jsonl"
    copy.write_text(a.read_text())
    first = records.variant_records(records.read_records(a))[0]
    with pytest.raises(RecordError) as err:
        merge_records([a, copy])
    message = str(err.value)
    assert (
        f"{first['variant_id']} repeat {first['repeat']} is in both {a}:2 and {copy}:2" in message
    )


def test_merge_upgrades_older_records_and_refuses_unknown_versions(tmp_path):
    a, b, _ = _fixture_halves(tmp_path)
    merged = merge_records([a, b])  # the fixture's version-1 records come out current
    assert {r["schema_version"] for r in merged} == {records.SCHEMA_VERSION}
    future = [r | {"schema_version": 99} for r in records.read_records(b)]
    _write(b, future)
    with pytest.raises(RecordError, match=r"b.jsonl:1: schema_version 99 is not supported"):
        merge_records([a, b])


def test_merge_never_overwrites_an_existing_file(tmp_path):
    a, b, _ = _fixture_halves(tmp_path)
    out = tmp_path / "all.jsonl"
    out.write_text("precious\n")
    with pytest.raises(OutputError, match="already exists; pass --force"):
        merge_files([a, b], out)
    assert out.read_text() == "precious\n"
    before = a.read_text()
    with pytest.raises(OutputError, match="is an input of this command"):
        merge_files([a, b], a, force=True)  # nor one of its own inputs, even with --force
    assert a.read_text() == before
    merged = merge_files([a, b], out, force=True)  # an existing non-input: only with force
    assert records.read_records(out) == merged


def test_merge_reports_a_damaged_input_by_line(tmp_path):
    a, b, _ = _fixture_halves(tmp_path)
    b.write_text(b.read_text() + "{not json\n")
    with pytest.raises(records.RecordError, match=r"b.jsonl:\d+: not valid JSON"):
        merge_files([a, b], tmp_path / "all.jsonl")
    assert not (tmp_path / "all.jsonl").exists()


def test_merge_cli_notes_a_missing_shard(tmp_path, capsys):
    a, _, _ = _fixture_halves(tmp_path)
    assert cli.main(["merge", str(a), "-o", str(tmp_path / "all.jsonl")]) == 0
    assert "no records from shard(s) 2/2" in capsys.readouterr().out


def test_cli_errors_come_before_any_work(tmp_path, capsys):
    a, _, _ = _fixture_halves(tmp_path)
    assert cli.main(["merge", str(a), str(a), "-o", str(tmp_path / "x.jsonl")]) == 2
    assert "is in both" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
    out = tmp_path / "run"
    assert cli.main(["run", "--profile", "quick", "--shard", "3/2", "--out", str(out)]) == 2
    assert "--shard '3/2': need 1 <= I <= N" in capsys.readouterr().err
    assert not out.exists()


def test_more_shards_than_variants_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--profile", "quick", "--shard", "4/4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--shard 4/4: the matrix has 4 variant(s), 3 besides the baseline and its control" in err
    assert "so N can be at most 3" in err
    assert not out.exists()


def test_list_prints_only_the_shards_variants(capsys):
    assert cli.main(["run", "--profile", "default", "--list", "--shard", "2/3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    matrix = load_profile("default")
    expected = plan_shards(matrix.variants(), 3, repeats=matrix.settings.repeats)[1]
    assert printed[: len(expected.variants)] == [v.id for v in expected.variants]
    total = len(matrix.variants())
    assert f"shard 2/3: {len(expected.variants)} of {total} variants" in "\n".join(printed)


def test_resuming_into_another_shards_directory_is_refused(tmp_path):
    a, _, _ = _fixture_halves(tmp_path)
    before = a.read_text()
    settings = RunSettings()
    ctx = runner.RunContext(run_id="t", profile="t", settings=settings, shard="2/2")
    with pytest.raises(runner.RunError, match=r"holds records of shard 1/2, not 2/2"):
        runner.run_plan(ctx, [Variant()], a, resume=True, measure_peak=False)
    assert a.read_text() == before


def _shape(value: Any) -> Any:
    """The field names of a record, recursively; values (timings) differ from run to run."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_shape(v) for v in value]
    return None


@pytest.mark.slow
def test_two_shards_of_quick_merged_equal_one_unsharded_run(tmp_path):
    matrix = load_profile("quick")
    variants = matrix.variants()
    settings = RunSettings(repeats=matrix.settings.repeats, warmup_steps=2, timeout_s=300)

    def run(spec: str, out: Path) -> None:
        ctx = runner.RunContext(
            run_id=f"quick-{spec}",
            profile="quick",
            settings=settings,
            hook="tests.hooks:small",
            baseline_id=variants[0].id,
            shard=spec,
        )
        part = shard.select_shard(variants, spec, settings.repeats)
        runner.run_plan(ctx, part.variants, out, measure_peak=False)

    run("1/1", tmp_path / "whole.jsonl")
    run("1/2", tmp_path / "s1.jsonl")
    run("2/2", tmp_path / "s2.jsonl")
    merged = merge_files([tmp_path / "s1.jsonl", tmp_path / "s2.jsonl"], tmp_path / "m.jsonl")
    whole = records.read_records(tmp_path / "whole.jsonl")

    def by_key(recs: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
        return {(r["variant_id"], r["repeat"]): r for r in records.variant_records(recs)}

    m, w = by_key(merged), by_key(whole)
    assert sorted(m) == sorted(w) == sorted((v.id, 0) for v in variants)
    for key in w:
        assert m[key]["status"] == w[key]["status"] == "ok", key
        assert m[key]["variant"] == w[key]["variant"]
        assert _shape(m[key]) == _shape(w[key]), key
    assert {r["run"]["shard"] for r in merged} == {"1/2", "2/2"}
    assert {r["run"]["baseline"] for r in merged} == {variants[0].id}
    assert len(records.probe_records(merged)) == 2
    text = markdown.render_markdown(merged)
    # Once in the headline table and once in the full one.
    assert all(text.count(f"| {v.id} ") == 2 for v in variants)
