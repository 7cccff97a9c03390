"""scripts/prove_matrix.py: its SUMMARY.md from synthetic runs of known truth, its checks before
any work, its scenario conditions, and one tiny campaign end to end."""

from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.plan.variant import Variant
from bench.report.aggregate import RunSummary, summarize_run
from tests.conftest import REPO, load_script
from tests.synthetic import arm_records, probe_record

pm = load_script("prove_matrix")

BASE = Variant()
CONTROL = Variant(control=True)
END = Variant(validation="end_only")  # the default slowed arm: the baseline's steps
BIG = Variant(batch_size=512)
# Repeat typical steps (ms) scattered ~1% around 10: an arm at 10 × r has step ratio r.
AROUND_10 = [10.0, 10.1, 9.9, 10.05]


def run_of(name: str, ratios: dict[Variant, float], seed: int = 0) -> RunSummary:
    """A run's summary whose arms' typical steps are `ratios` × the baseline's (same scatter)."""
    records = [probe_record("start", [100.0, 100.0])]
    for i, variant in enumerate([BASE, *ratios]):
        ratio = ratios.get(variant, 1.0)
        records += arm_records(variant, [t * ratio for t in AROUND_10], seed=seed * 10 + i)
    for record in records:
        record["run"] = {**record["run"], "id": name}
    return summarize_run(records)


def campaign(summaries: dict[str, RunSummary], arm: str = END.id) -> dict[str, Any]:
    meta = {
        "profile": "default",
        "sets": [],
        "arm": arm,
        "extra": 0.10,
        "started_utc": "2026-12-06T10:00:00+00:00",
        "finished_utc": "2026-12-06T11:00:00+00:00",
        "command": "MNIST_BENCH_CACHE=.cache python scripts/prove_matrix.py --runs 2",
    }
    runs = {n: {"finished_utc": meta["finished_utc"], "wall_s": 420.0} for n in summaries}
    return {"meta": meta, "runs": runs}


def checks_of(summary_md: str) -> dict[str, tuple[str, str]]:
    """The outcome table: check → (result, on target)."""
    rows = [line.split(" | ") for line in summary_md.splitlines() if " of " in line]
    return {r[0].lstrip("| "): (r[1], r[3].rstrip(" |")) for r in rows if len(r) == 4}


QUIET = {CONTROL: 1.0, END: 1.0, BIG: 1.8}


def test_a_quiet_campaign_meets_every_target():
    """The whole story on synthetic runs of known truth: the A/A holds 1, verdicts agree, the
    slowed arm (10% on a ratio of 1) is called slower and its interval holds 1.10, nothing else
    flips. Fails if a check counts the wrong thing, e.g. the slowed arm among the 'other' verdicts."""
    summaries = {
        "unchanged-1": run_of("unchanged-1", QUIET, 1),
        "slowed-1": run_of("slowed-1", {**QUIET, END: 1.10}, 2),
        "unchanged-2": run_of("unchanged-2", QUIET, 3),
        "slowed-2": run_of("slowed-2", {**QUIET, END: 1.10}, 4),
        "busy-1": run_of("busy-1", QUIET, 5),
    }
    text = pm.render(campaign(summaries), summaries)
    checks = checks_of(text)
    assert checks["unchanged: A/A interval holds 1"] == ("2 of 2", "yes")
    assert checks["unchanged: variants with one step-time verdict in every run"] == (
        "2 of 2",
        "yes",
    )
    assert checks[f"slowed: `{END.id}` called slower"] == ("2 of 2", "yes")
    assert checks["slowed: its interval holds unchanged × 1.10"] == ("2 of 2", "yes")
    # The other judged variant (batch 512) in each of the 2 slowed runs: neither flipped.
    assert checks["slowed: other verdicts not given in any unchanged run"] == ("0 of 2", "yes")
    assert "busy: A/A interval holds 1" in checks
    assert "Disagreements" not in text
    assert text == pm.render(campaign(summaries), summaries)  # a pure function


def test_an_aa_interval_that_misses_1_is_counted_and_shown():
    """A control 20% slower than its baseline: the A/A check must fail in that run only. Fails if
    the A/A is read from a variant's interval, or 'holds' tests the point instead of the interval."""
    summaries = {
        "unchanged-1": run_of("unchanged-1", QUIET, 1),
        "unchanged-2": run_of("unchanged-2", {**QUIET, CONTROL: 1.2}, 2),
    }
    text = pm.render(campaign(summaries), summaries)
    assert checks_of(text)["unchanged: A/A interval holds 1"] == ("1 of 2", "no")
    aa = pm.ratio_of(summaries["unchanged-2"], None)
    assert aa.lo > 1.0
    assert f"unchanged-2 {pm.ratio_text(aa)}" in text


def test_a_flipped_verdict_is_caught_and_explained_with_its_intervals():
    """Batch 512 runs at the baseline's speed in the unchanged runs but 1.3× in a slowed run (a hook
    that slowed the wrong arm): the flip is counted and shown with its interval and the floor."""
    summaries = {
        "unchanged-1": run_of("unchanged-1", {**QUIET, BIG: 1.0}, 1),
        "slowed-1": run_of("slowed-1", {**QUIET, END: 1.10, BIG: 1.3}, 2),
    }
    text = pm.render(campaign(summaries), summaries)
    assert checks_of(text)["slowed: other verdicts not given in any unchanged run"] == (
        "1 of 1",
        "no",
    )
    ratio = pm.ratio_of(summaries["slowed-1"], BIG.id)
    assert pm.verdict_of(summaries["slowed-1"], BIG.id) == "slower"
    assert f"- `{BIG.id}` in slowed-1: slower: {pm.ratio_text(ratio)}, wholly beyond" in text


def test_verdicts_that_disagree_across_unchanged_runs_are_explained():
    """Batch 512 slower in one unchanged run and not in the other: 'same verdict' says no, and each
    run's interval is given with what decided it. Fails if verdicts are compared with their quoted
    resolution ('±2.1%' against '±1.9%'), which would call every pair of runs a disagreement."""
    summaries = {
        "unchanged-1": run_of("unchanged-1", {**QUIET, BIG: 1.0}, 1),
        "unchanged-2": run_of("unchanged-2", {**QUIET, BIG: 1.3}, 2),
    }
    text = pm.render(campaign(summaries), summaries)
    checks = checks_of(text)
    # The end_only arm agrees (no measurable difference twice) although its quoted ± differ.
    assert checks["unchanged: variants with one step-time verdict in every run"] == ("1 of 2", "no")
    line = next(ln for ln in text.splitlines() if ln.startswith(f"- `{BIG.id}`"))
    assert "unchanged-1: no measurable difference" in line and "unchanged-2: slower" in line


def test_the_slowed_arm_missed_when_its_ratio_did_not_move():
    """An injection that did nothing (the arm at 1.0 in the slowed run): 'called slower' and
    'holds 1.10' both fail. Fails if the expected ratio is not the arm's unchanged ratio × 1.10."""
    summaries = {
        "unchanged-1": run_of("unchanged-1", QUIET, 1),
        "slowed-1": run_of("slowed-1", QUIET, 2),
    }
    checks = checks_of(pm.render(campaign(summaries), summaries))
    assert checks[f"slowed: `{END.id}` called slower"] == ("0 of 1", "no")
    assert checks["slowed: its interval holds unchanged × 1.10"] == ("0 of 1", "no")


def test_the_expected_slowed_ratio_is_relative_to_the_arms_own_unchanged_ratio():
    """Slowing batch 512 (1.8× unchanged) to 1.98×: its interval must hold 1.8 × 1.1, not 1.1."""
    summaries = {
        "unchanged-1": run_of("unchanged-1", QUIET, 1),
        "slowed-1": run_of("slowed-1", {**QUIET, BIG: 1.98}, 2),
    }
    text = pm.render(campaign(summaries, arm=BIG.id), summaries)
    assert checks_of(text)["slowed: its interval holds unchanged × 1.10"] == ("1 of 1", "yes")
    slowed, unchanged = (pm.ratio_of(summaries[n], BIG.id) for n in ("slowed-1", "unchanged-1"))
    assert f"| {slowed.point / unchanged.point:.3f} | yes |" in text


def test_busy_half_widths_are_checked_against_5_percent():
    """A busy run whose repeats scatter ±25%: its intervals are wide, and the check says so."""
    records = [probe_record("start", [100.0])]
    for i, variant in enumerate([BASE, CONTROL, END]):
        records += arm_records(variant, [10.0, 14.0, 7.0, 12.0], seed=i)
    summaries = {"busy-1": summarize_run(records)}
    checks = checks_of(pm.render(campaign(summaries), summaries))
    result, on_target = checks["busy: step-ratio half-widths within ±5%"]
    assert on_target == "no" and result.endswith("of 2")


def test_runs_take_turns_then_the_busy_run():
    """Bug: all unchanged runs first, so a drifting machine would reach only the slowed ones."""
    assert pm.schedule(3, pm.SCENARIOS) == [
        "unchanged-1", "slowed-1", "unchanged-2", "slowed-2", "unchanged-3", "slowed-3", "busy-1",
    ]  # fmt: skip
    assert pm.schedule(2, ("slowed",)) == ["slowed-1", "slowed-2"]


# --- Checks before any work ---------------------------------------------------------------------


@pytest.fixture
def no_data(monkeypatch):
    """Loading the data (the first expensive step) fails the test: checks must come before it."""

    def refuse(*_a: Any, **_k: Any) -> None:
        pytest.fail("the data was loaded before the arguments were checked")

    monkeypatch.setattr("mnist_models.data.load_mnist", refuse)


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"meta": {}}), json.dumps({"meta": {}, "runs": []})],
    ids=["not-json", "no-runs", "runs-not-an-object"],
)
def test_resume_refuses_a_bad_campaign_file_first(tmp_path, capsys, no_data, content):
    """Bug: a broken campaign.json found only after the data and the first run."""
    (tmp_path / "campaign.json").write_text(content)
    with pytest.raises(SystemExit) as exc:
        pm.main(["--resume", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "cannot use" in capsys.readouterr().err


def test_resume_refuses_another_campaign(tmp_path, capsys, no_data):
    """Bug: resuming a campaign that slowed another arm would mix two experiments in one summary."""
    kept = {"meta": {**pm.campaign_meta(pm._parser().parse_args([])), "arm": "x"}, "runs": {}}
    (tmp_path / "campaign.json").write_text(json.dumps(kept))
    with pytest.raises(SystemExit):
        pm.main(["--resume", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "another arm" in err and "arm='x'" in err


def test_resume_refuses_a_run_of_another_plan(tmp_path, capsys, no_data):
    """A run's results.jsonl from another matrix: refused by the runner's own check, up front."""
    run = tmp_path / "unchanged-1" / "results.jsonl"
    run.parent.mkdir()
    records = arm_records(BASE, [10.0])
    for r in records:
        r["run"]["fingerprint"] = "0123456789abcdef"
    run.write_text("".join(json.dumps(r) + "\n" for r in [probe_record("start", [1.0]), *records]))
    with pytest.raises(SystemExit):
        pm.main(["--resume", "--only", "unchanged", "--out", str(tmp_path)])
    assert "unchanged-1/results.jsonl" in capsys.readouterr().err


def test_an_existing_campaign_needs_resume(tmp_path, capsys, no_data):
    (tmp_path / "campaign.json").write_text("{}")
    with pytest.raises(SystemExit):
        pm.main(["--out", str(tmp_path)])
    assert "pass --resume" in capsys.readouterr().err


def test_an_arm_not_in_the_profile_is_refused(tmp_path, capsys, no_data):
    """Bug: a misspelt --arm slows nothing, and the slowed runs pass for unchanged ones."""
    with pytest.raises(SystemExit):
        pm.main(["--arm", "bs64-per_epoch-float32-cpu", "--out", str(tmp_path)])
    assert "choose one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the baseline is no arm to slow: every ratio would move
        pm.main(["--arm", BASE.id, "--out", str(tmp_path)])


# --- Scenario conditions ------------------------------------------------------------------------


def test_the_busy_loop_dies_with_a_failed_run():
    """Bug: a run that raises leaves the busy loop spinning on a core for every later run."""
    with pytest.raises(RuntimeError), pm.scenario_conditions("busy", None, 0.0) as conditions:
        pid = conditions["busy_pid"]
        os.kill(pid, 0)  # spinning while the run runs
        raise RuntimeError("the run failed")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_only_the_slowed_runs_name_an_arm_to_the_hook():
    """The variable the hook reads is set for a slowed run only, and gone after it."""
    with pm.scenario_conditions("slowed", END, 0.087):
        assert json.loads(os.environ[pm.SLOW_ARM_ENV]) == pm.slow_arm_spec(END, 0.087)
    assert pm.SLOW_ARM_ENV not in os.environ
    with pm.scenario_conditions("unchanged", None, 0.0) as conditions:
        assert conditions == {} and pm.SLOW_ARM_ENV not in os.environ


def test_the_hook_slows_the_named_arm_only(tmp_path, monkeypatch):
    """tests.arm_hooks:slow_one_arm, as a worker calls it: the named arm gets the busy-wait callback,
    another arm nothing, and without the variable it refuses. Fails if the script and the hook
    disagree on the variable's name or format (the slowed runs would then slow nothing), or if
    loading the hook hides a GPU arm's GPUs (as importing tests.conftest does)."""
    from bench.measure.ab_runs import ExtraWork
    from tests import arm_hooks as hooks

    job = tmp_path / "job.json"
    monkeypatch.setattr("sys.argv", ["worker", str(job), "result.json"])
    with pm.scenario_conditions("slowed", END, 0.087):
        # A worker's copy carries its repeat's seed: still the arm (bug: matching on the id,
        # which names a seed other than the matrix's, slowed nothing).
        job.write_text(json.dumps({"variant": {**END.to_dict(), "seed": 3}}))
        (callback,) = hooks.slow_one_arm()["callbacks"]
        assert (
            isinstance(callback, ExtraWork) and callback.extra == 0.087
        )  # the calibrated wait, not the cost
        for other in (BASE, CONTROL, BIG):
            job.write_text(json.dumps({"variant": {**other.to_dict(), "seed": 3}}))
            assert hooks.slow_one_arm() == {}
    with pytest.raises(RuntimeError, match=pm.SLOW_ARM_ENV):
        hooks.slow_one_arm()
    assert not [m for m in _imports_of(REPO / "tests" / "arm_hooks.py") if m.startswith("tests")]


def test_the_wait_is_scaled_until_its_cost_holds_the_target(monkeypatch):
    """Bugs: the wait taken as its own cost (a wait also slows the next step, so 0.10 costs more);
    the scaling inverted; a wait kept whose measured cost excludes the target."""
    import math

    priced = []

    def costs(arm, wait):  # every step after a wait pays 15% more than the wait: cost 1.15 x wait
        priced.append(wait)
        return [math.log(1 + 1.15 * wait) + d for d in (-0.002, 0.0, 0.002)]

    monkeypatch.setattr(pm, "injection_costs", costs)
    calibration = pm.calibrate(END, 0.10)
    assert priced[0] == 0.10 and len(priced) >= 2
    assert 1.15 * calibration["wait"] == pytest.approx(0.10, abs=0.002)
    assert calibration["tries"][-1]["lo"] <= 0.10 <= calibration["tries"][-1]["hi"]
    monkeypatch.setattr(pm, "injection_costs", lambda arm, wait: [0.5, 0.51, 0.49])
    with pytest.raises(RuntimeError, match="no wait cost 10%"):
        pm.calibrate(END, 0.10)


def _imports_of(path: Path) -> set[str]:
    """The modules a file imports (its own import statements)."""
    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


# --- End to end ---------------------------------------------------------------------------------

TINY = [
    "--profile", "quick", "--set", "batch_size=2048", "--set", "aa_control=true",
    "--arm", "bs2048-end_only-float32-cpu", "--runs", "1",
]  # fmt: skip


@pytest.mark.slow  # three runs of one set of three small arms (the docstring's dry run)
def test_a_tiny_campaign_end_to_end(tmp_path):
    """Every run's records and REPORT.md, campaign.json and SUMMARY.md; then --resume runs nothing."""
    out = tmp_path / "proof"
    assert pm.main([*TINY, "--out", str(out)]) == 0
    for name in ("unchanged-1", "slowed-1", "busy-1"):
        assert (out / name / "results.jsonl").is_file() and (out / name / "REPORT.md").is_file()
    kept = json.loads((out / "campaign.json").read_text())
    assert list(kept["runs"]) == ["unchanged-1", "slowed-1", "busy-1"]
    assert all(entry["finished_utc"] for entry in kept["runs"].values())
    summary = (out / "SUMMARY.md").read_text()
    assert "## Unchanged: 1 run" in summary and "## Busy" in summary
    assert "## Slowed: `bs2048-end_only-float32-cpu` +10% per step, 1 run" in summary
    before = {p: p.stat().st_mtime_ns for p in out.rglob("results.jsonl")}
    time.sleep(0.01)
    assert pm.main([*TINY, "--out", str(out), "--resume"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("results.jsonl")} == before
    assert Path(out / "SUMMARY.md").read_text().count("## Runs") == 1


def test_the_campaign_skips_finished_runs_and_resumes_a_failed_one(tmp_path, monkeypatch):
    """run_campaign with the measuring faked: a run that fails stays unfinished while the others go
    on, and the next command resumes it alone, as `run --resume` (bugs: a failure ending the
    campaign; a finished run measured again; a partial run restarted over its records)."""
    calls: list[tuple[str, bool]] = []

    def fake_run(name, matrix, meta, out, resume):
        calls.append((name, resume))
        if name == "slowed-1" and len(calls) < 4:
            raise RuntimeError("machine probe failed")
        path = out / name / "results.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        records = arm_records(BASE, AROUND_10) + arm_records(END, AROUND_10, seed=1)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return {"scenario": pm.scenario_of(name)}

    monkeypatch.setattr(pm, "measure_run", fake_run)
    sized = []
    monkeypatch.setattr(
        pm, "calibrate", lambda arm, target: sized.append(arm) or {"wait": 0.09, "tries": []}
    )
    matrix = SimpleNamespace(variants=lambda: [BASE, END])
    names = pm.schedule(1, pm.SCENARIOS)
    kept = {"meta": pm.campaign_meta(pm._parser().parse_args([])), "runs": {}}
    assert pm.run_campaign(names, kept, matrix, tmp_path, False) == ["slowed-1"]
    stored = json.loads((tmp_path / "campaign.json").read_text())
    assert stored["runs"]["slowed-1"]["error"] == "RuntimeError: machine probe failed"
    assert not stored["runs"]["slowed-1"].get("finished_utc")
    assert stored["runs"]["busy-1"]["finished_utc"]  # the failure did not end the campaign
    assert "unchanged-1" in (tmp_path / "SUMMARY.md").read_text()
    resumed = pm.load_campaign(tmp_path, kept["meta"])
    assert pm.run_campaign(names, resumed, matrix, tmp_path, True) == []
    assert sized == [END]  # sized once, before the first slowed run; kept on resume
    assert calls[3:] == [("slowed-1", True)]
    assert json.loads((tmp_path / "campaign.json").read_text())["runs"]["slowed-1"]["attempts"] == 2
