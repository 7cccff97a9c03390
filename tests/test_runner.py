"""The matrix runner end to end: real child processes on a small real slice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import records, stats
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.run import runner

pytestmark = pytest.mark.slow


def _ctx(hook: str, timeout_s: float = 300, repeats: int = 1) -> runner.RunContext:
    settings = RunSettings(repeats=repeats, warmup_steps=2, timeout_s=timeout_s)
    return runner.RunContext(run_id="test", profile="test", settings=settings, hook=hook)


def _by_id(path: Path) -> dict[tuple[str, int], dict]:
    return {
        (r["variant_id"], r["repeat"]): r
        for r in records.variant_records(records.read_records(path))
    }


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


def test_failures_divergence_and_timeouts_become_records_and_the_matrix_goes_on(tmp_path):
    out = tmp_path / "results.jsonl"
    cases = {"fail": (100, 300), "diverge": (200, 300), "hang": (400, 8), "small": (500, 300)}
    for hook, (batch_size, timeout_s) in cases.items():
        runner.run_plan(
            _ctx(f"tests.hooks:{hook}", timeout_s),
            [Variant(batch_size=batch_size)],
            out,
            resume=True,
            measure_peak=False,
        )
    got = {key[0].split("-")[0]: r for key, r in _by_id(out).items()}
    assert (
        got["bs100"]["status"] == "failed" and "injected failure (test)" in got["bs100"]["reason"]
    )
    assert got["bs200"]["status"] == "diverged" and "non-finite" in got["bs200"]["reason"]
    assert got["bs400"]["status"] == "timeout" and "8 s limit" in got["bs400"]["reason"]
    assert got["bs500"]["status"] == "ok"  # the matrix went on after all three


def test_resume_reruns_nothing_already_recorded(tmp_path):
    out = tmp_path / "results.jsonl"
    variants = [Variant(batch_size=500), Variant(batch_size=1000)]
    ctx = _ctx("tests.hooks:small", repeats=2)
    first = runner.run_plan(ctx, variants[:1], out, measure_peak=False)  # an "interrupted" run
    assert len(first) == 2
    before = out.read_text()
    second = runner.run_plan(ctx, variants, out, resume=True, measure_peak=False)
    assert [(j.variant.id, j.repeat) for j in second] == [
        ("bs1000-per_epoch-float32-cpu", 0),
        ("bs1000-per_epoch-float32-cpu", 1),
    ]
    assert out.read_text().startswith(before)  # nothing recorded was lost or rewritten
    assert len(_by_id(out)) == 4


def test_existing_records_are_never_overwritten_without_resume(tmp_path):
    out = tmp_path / "results.jsonl"
    out.write_text("{}\n")
    with pytest.raises(runner.RunError, match="already holds records; pass --resume"):
        runner.run_plan(_ctx("tests.hooks:small"), [Variant()], out)
    assert out.read_text() == "{}\n"
