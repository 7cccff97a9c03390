"""The matrix runner end to end: real child processes on a small real slice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import records, stats
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.run import runner


def _ctx(hook: str, timeout_s: float = 300, repeats: int = 1, **kw: object) -> runner.RunContext:
    settings = RunSettings(repeats=repeats, warmup_steps=2, timeout_s=timeout_s, **kw)
    return runner.RunContext(run_id="test", profile="test", settings=settings, hook=hook)


def _by_id(path: Path) -> dict[tuple[str, int], dict]:
    return {
        (r["variant_id"], r["repeat"]): r
        for r in records.variant_records(records.read_records(path))
    }


@pytest.mark.slow  # starts real workers that train
def test_a_small_matrix_records_ok_skipped_and_per_strategy_fields(tmp_path):
    out = tmp_path / "results.jsonl"
    variants = [
        Variant(batch_size=200, validation="end_only", epochs=2),
        Variant(batch_size=200, validation="split", epochs=2, validation_split=0.2),
        Variant(batch_size=200, validation="freq", epochs=2, validation_freq=2),
        Variant(batch_size=200, device="gpu"),
    ]
    runner.run_plan(_ctx("tests.hooks:small"), variants, out, measure_peak=False)
    got = _by_id(out)
    end_only = got[("bs200-end_only-float32-cpu-e2", 0)]
    assert end_only["status"] == "ok"
    assert end_only["accuracy"]["val_accuracy"] == [None, None]
    assert end_only["timing"]["val_s_per_epoch"] == [0.0, 0.0]
    assert end_only["timing"]["final_eval_s"] > 0
    assert stats.repeat_stats(end_only)["time_to_target_s"] is None  # no per-epoch signal
    split = got[("bs200-split-float32-cpu-e2-vs0.2", 0)]
    assert split["accuracy"]["train_images"] == 1600
    assert split["timing"]["steps_per_epoch"] == 8
    assert all(v is not None for v in split["accuracy"]["val_accuracy"])
    freq = got[("bs200-freq-float32-cpu-e2", 0)]
    assert freq["accuracy"]["val_accuracy"][0] is None
    assert freq["accuracy"]["val_accuracy"][1] is not None
    assert freq["timing"]["val_s_per_epoch"][0] == 0.0 < freq["timing"]["val_s_per_epoch"][1]
    gpu = got[("bs200-per_epoch-float32-gpu", 0)]
    assert gpu["status"] == "skipped" and "no GPU visible" in gpu["reason"]
    assert len(records.probe_records(records.read_records(out))) == 1


@pytest.mark.slow  # starts real workers that train
def test_failures_divergence_and_timeouts_become_records_and_the_matrix_goes_on(tmp_path):
    cases = {"fail": (100, 300), "diverge": (200, 300), "hang": (400, 8), "small": (500, 300)}
    got = {}
    for hook, (batch_size, timeout_s) in cases.items():
        out = tmp_path / f"{hook}.jsonl"  # each its own run: a set of one arm, with its own hook
        ctx = _ctx(f"tests.hooks:{hook}", timeout_s)
        runner.run_plan(ctx, [Variant(batch_size=batch_size)], out, measure_peak=False)
        got.update({key[0].split("-")[0]: r for key, r in _by_id(out).items()})
    assert (
        got["bs100"]["status"] == "failed" and "injected failure (test)" in got["bs100"]["reason"]
    )
    assert got["bs200"]["status"] == "diverged" and "non-finite" in got["bs200"]["reason"]
    assert got["bs400"]["status"] == "timeout" and "8 s limit" in got["bs400"]["reason"]
    assert got["bs500"]["status"] == "ok"  # the matrix went on after all three


@pytest.mark.slow  # starts real workers that train
def test_resume_reruns_nothing_already_recorded(tmp_path):
    """Catches: a resumed run measuring a recorded set again, or rewriting what the file holds."""
    out = tmp_path / "results.jsonl"
    variants = [Variant(batch_size=500), Variant(batch_size=1000)]
    ctx = _ctx("tests.hooks:small", repeats=2, block_s=0.02)
    stopped = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, repeats=1))
    runner.run_plan(stopped, variants, out, measure_peak=False)  # as if stopped after g0-r0
    before = out.read_text()
    sets: list[str] = []
    runner.run_plan(ctx, variants, out, resume=True, measure_peak=False, on_set=sets.append)
    assert [s.split(":")[0] for s in sets] == ["set g0-r1"]
    assert out.read_text().startswith(before)  # nothing recorded was lost or rewritten
    assert len(_by_id(out)) == 4


def test_existing_records_are_never_overwritten_without_resume(tmp_path):
    out = tmp_path / "results.jsonl"
    out.write_text("{}\n")
    with pytest.raises(runner.RunError, match="already holds records; pass --resume"):
        runner.run_plan(_ctx("tests.hooks:small"), [Variant()], out)
    assert out.read_text() == "{}\n"


@pytest.mark.slow  # starts real workers that train
def test_a_paired_matrix_runs_its_arms_side_by_side_and_records_each_arm_as_it_ends(tmp_path):
    out = tmp_path / "results.jsonl"
    base = Variant(batch_size=100, validation="end_only")
    variants = [base, dataclasses.replace(base, control=True), Variant(batch_size=50)]
    ctx = _ctx("tests.hooks:small", repeats=2, aa_control=True, block_s=0.02)
    ctx = dataclasses.replace(ctx, baseline_id=base.id)
    sets: list[str] = []
    runner.run_plan(ctx, variants, out, measure_peak=False, on_set=sets.append)
    recs = records.variant_records(records.read_records(out))
    assert [s.split(":")[0] for s in sets] == ["set g0-r0", "set g0-r1"]
    by_set: dict[str, list[dict]] = {}
    for r in recs:
        by_set.setdefault(r["pairing"]["set"], []).append(r)
    assert sorted(by_set) == ["g0-r0", "g0-r1"]
    for set_recs in by_set.values():
        assert sorted(r["variant_id"] for r in set_recs) == sorted(v.id for v in variants)
        roles = {r["variant_id"]: r["pairing"]["role"] for r in set_recs}
        assert [roles[v.id] for v in variants] == ["baseline", "control", "arm"]
        assert all(r["status"] == "ok" for r in set_recs)
        # each arm written as it ended: its rounds and seconds so far, the last one's the set's
        rounds = [r["pairing"]["rounds"] for r in set_recs]
        assert rounds == sorted(rounds) and rounds[-1] > 3
        seconds = [r["pairing"]["set_s"] for r in set_recs]
        assert seconds == sorted(seconds)
        for r in set_recs:  # one turn a round while live
            assert len(r["pairing"]["turns"]) <= r["pairing"]["rounds"]
            assert r["timing"]["pauses"]  # it did wait for the others mid-training
            waited = sum(s for _, s in r["timing"]["pauses"])
            # the clock left the waits out: the epoch's time is less than the set's turns
            assert sum(r["timing"]["train_s_per_epoch"]) < r["pairing"]["set_s"] - waited
    seeds = {(r["pairing"]["role"], r["pairing"]["set"]): r["seed"] for r in recs}
    assert seeds[("control", "g0-r0")] != seeds[("baseline", "g0-r0")]  # its own seeds
    base_recs = [r for r in recs if r["pairing"]["role"] == "baseline"]
    arm_recs = [r for r in recs if r["pairing"]["role"] == "arm"]
    summary = stats.compare_arms(stats.arm("a", base_recs), stats.arm("b", arm_recs))
    assert summary is not None and summary.paired_sets == 2
    before = out.read_text()
    runner.run_plan(ctx, variants, out, resume=True, measure_peak=False)
    assert out.read_text() == before  # both sets were done: nothing reran


def test_a_set_arm_that_crashes_or_hangs_becomes_a_failed_or_timeout_result(tmp_path):
    from bench.run import pairs, turns

    done = tmp_path / "result.json"
    done.write_text('{"status": "ok"}')
    assert pairs._result(done, None, 60) == {"status": "ok"}
    hung = pairs.ArmEnd(turns.TurnError("x", "gave no answer within 60 s", timed_out=True))
    assert pairs._result(tmp_path / "none", hung, 60)["reason"] == "killed after the 60 s limit"
    noise = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    error = turns.TurnError("x", f"exited -9 without a response: {noise}")
    died = pairs._result(tmp_path / "none", pairs.ArmEnd(error, -9, 12.34, 3 * 2**30), 60)
    assert died == {
        "status": "failed",
        "reason": "killed by SIGKILL (signal 9) after 12.3 s: often the kernel's out-of-memory "
        "killer; peak RSS 3.0 GiB when last read\n"
        "`dmesg` or `journalctl -k` says 'Out of memory: Killed process' if it was",
    }


@pytest.mark.slow  # starts real workers that train
def test_a_real_worker_killed_mid_training_is_recorded_with_sigkill_not_tensorflows_log(tmp_path):
    # The bug: its reason was TensorFlow's first stderr line ("WARNING: All log messages before
    # absl::InitializeLog() is called …") behind "exited with code -9".
    out = tmp_path / "results.jsonl"
    ctx = _ctx("tests.fault_hooks:sigkill_mid_training")
    runner.run_jobs(ctx, [runner.Job(Variant(batch_size=100), 0)], out, gpus={})
    (record,) = _by_id(out).values()
    assert record["status"] == "failed"
    head = records.first_line(record["reason"])
    assert head.startswith("killed by SIGKILL (signal 9) after "), head
    assert "often the kernel's out-of-memory killer; peak RSS " in head
    assert "absl::InitializeLog" not in record["reason"]
    print(record["reason"])


@pytest.mark.slow  # starts real workers that train
def test_an_arm_that_fails_in_a_set_is_recorded_and_the_others_are_measured(tmp_path):
    out = tmp_path / "results.jsonl"
    variants = [Variant(batch_size=100), Variant(batch_size=200), Variant(batch_size=400)]
    ctx = _ctx("tests.hooks:fail_bs200", repeats=1, block_s=0.02)
    runner.run_plan(ctx, variants, out, measure_peak=False)
    got = {
        r["variant_id"].split("-")[0]: r for r in records.variant_records(records.read_records(out))
    }
    assert (
        got["bs200"]["status"] == "failed" and "injected failure (test)" in got["bs200"]["reason"]
    )
    assert got["bs100"]["status"] == got["bs400"]["status"] == "ok"
    assert got["bs200"]["pairing"]["set"] == got["bs100"]["pairing"]["set"] == "g0-r0"
    with pytest.raises(runner.RunError, match="holds other arms"):  # another matrix, same file
        runner.run_plan(ctx, variants[:2], out, resume=True, measure_peak=False)
