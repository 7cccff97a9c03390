"""Faults say what happened, and can be retried.

A job's process killed by a signal is recorded with the signal's name and its likely cause (not
TensorFlow's first stderr line), on every path that starts one: a plain job, an arm of a paired
set, a multi_worker worker. ``run --resume --retry-failed`` runs failed and timed-out jobs again
(a paired set's whole set), keeps the old records as history, and readers use the latest attempt.

The processes here are ``tests.fake_worker`` (no TensorFlow) and the retries use in-process fakes
of ``run_child`` and ``pairs.run_set``, so the whole file runs in seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import cli, records, stats
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.records import REASON_CHARS
from bench.report import aggregate, markdown
from bench.run import child, cluster, pairs, runner, skips
from bench.run.progress import probe_line
from tests.fake_worker import TF_NOISE

FIXTURE = Path(__file__).parent / "fixtures" / "records.jsonl"
_FIXTURE_RECORDS = records.read_records(FIXTURE)
MACHINE = _FIXTURE_RECORDS[0]["machine"]
OK_RESULT = {
    k: v
    for k, v in next(r for r in _FIXTURE_RECORDS if r.get("status") == "ok").items()
    if k in ("status", "reason", "timing", "accuracy", "model", "memory", "data")
}
SIGKILL_HEAD = re.compile(
    r"killed by SIGKILL \(signal 9\) after \d+\.\d s: often the kernel's out-of-memory killer"
    r"(; peak RSS (?P<mib>\d+) MiB when last read)?"
)


def _fake_worker(monkeypatch: pytest.MonkeyPatch, module: Any, mode: str) -> None:
    def command(job: Path, result: Path) -> list[str]:
        return [sys.executable, "-m", "tests.fake_worker", mode, str(job), str(result)]

    monkeypatch.setattr(module, "worker_command", command)


def _ctx(**settings: Any) -> runner.RunContext:
    return runner.RunContext(
        run_id="faults",
        profile="test",
        settings=RunSettings(**settings),
        machine=MACHINE,
        commit={"id": None, "dirty": None},
    )


def _assert_oom_reason(reason: str, *, rss: bool = True) -> None:
    head = records.first_line(reason)
    match = SIGKILL_HEAD.fullmatch(head)
    assert match, head
    if rss:  # the fake held 64 MiB on top of the interpreter
        assert match["mib"] and int(match["mib"]) >= 64, head
    assert "journalctl -k" in reason  # where to confirm it
    assert "absl::InitializeLog" not in reason and "port.cc" not in reason  # no framework noise
    assert len(reason) <= REASON_CHARS


# --- What a fault's record says ---------------------------------------------------------------


def test_a_job_killed_by_sigkill_is_recorded_with_the_signal_the_oom_hint_and_its_rss(
    monkeypatch, tmp_path
):
    _fake_worker(monkeypatch, child, "oom")
    monkeypatch.setattr(child, "RSS_SAMPLE_S", 0.05)
    out = tmp_path / "results.jsonl"
    runner.run_jobs(_ctx(), [runner.Job(Variant(batch_size=100), 0)], out, gpus={})
    (record,) = records.variant_records(records.read_records(out))
    assert record["status"] == "failed"
    _assert_oom_reason(record["reason"])
    print(record["reason"])  # pytest -s shows a real one


def test_an_arm_of_a_paired_set_killed_by_sigkill_says_so_and_its_partner_is_measured(
    monkeypatch,
):
    _fake_worker(monkeypatch, pairs, "turns")
    variants = [Variant(batch_size=100), Variant(batch_size=200)]
    pset = pairs.make_set(0, 0, variants, baseline_id=variants[0].id, groups=1)
    outcomes, _, _ = pairs.run_set(
        pset,
        lambda arm: {"kind": "variant", "variant": arm.variant.to_dict()},
        RunSettings(timeout_s=60, block_s=0.01),
    )
    assert outcomes[variants[0].id].result == {"status": "ok", "reason": None}
    killed = outcomes[variants[1].id].result
    assert killed["status"] == "failed"
    _assert_oom_reason(killed["reason"])


def test_a_multi_worker_worker_killed_by_sigkill_is_named_with_the_signal(monkeypatch):
    _fake_worker(monkeypatch, cluster, "cluster")
    result, _ = cluster.run_workers({"kind": "variant"}, 2, "cpu", timeout_s=60)
    assert result["status"] == "failed"
    assert result["reason"].startswith("multi_worker worker 1 killed by SIGKILL (signal 9)")
    # Its RSS is read every 0.2 s while it runs: present on an idle machine, not guaranteed.
    _assert_oom_reason(result["reason"].removeprefix("multi_worker worker 1 "), rss=False)
    assert [w["exit_code"] for w in result["worker_processes"]][1] == -9


def test_a_crash_is_recorded_with_its_exception_not_the_frameworks_log_lines(monkeypatch, tmp_path):
    _fake_worker(monkeypatch, child, "crash")
    result, _ = child.run_child({"kind": "variant"}, timeout_s=60)
    assert result["status"] == "failed"
    head = records.first_line(result["reason"])
    assert re.fullmatch(
        r"exited with code 1 after \d+\.\d s without a result: RuntimeError: injected crash \(test\)",
        head,
    ), head
    assert "Traceback (most recent call last):" in result["reason"]  # the context follows
    assert "absl::InitializeLog" not in result["reason"]


def test_a_reason_names_any_signal_and_keeps_within_the_record_limit():
    reason = child.exit_reason(-11, TF_NOISE, 2.0, None, who="multi_worker worker 0")
    assert reason == (
        "multi_worker worker 0 killed by SIGSEGV (signal 11) after 2.0 s: "
        "a crash in native code (a framework or driver bug)"
    )
    assert child.exit_reason(-250, "", None).startswith("killed by an unknown signal (signal 250)")
    long = "\n".join(f"line {i} of a chatty process" for i in range(5000))
    reason = child.exit_reason(3, long, 1.0)
    assert len(reason) == REASON_CHARS and reason.endswith("line 4999 of a chatty process")
    assert records.first_line(reason).endswith("without a result: line 4999 of a chatty process")
    assert child.exit_reason(0, "", None) == "exited with code 0 without a result: no output"


# --- --resume --retry-failed --------------------------------------------------------------------


class FakeSets:
    """``pairs.run_set`` in this process: in set `id`, the arm of batch size `script[id][0]` ends
    with status `script[id][1]`, once ("interrupt": the run is interrupted as that arm runs, after
    the arms before it ended)."""

    def __init__(self, script: dict[str, tuple[int, str]]) -> None:
        self.script, self.ran = dict(script), []

    def __call__(
        self, pset: pairs.PairedSet, job_of: Any, settings: RunSettings, *, on_arm: Any = None
    ) -> Any:
        self.ran.append((pset.id, [a.variant.batch_size for a in pset.arms]))
        failing, status = self.script.pop(pset.id, (None, "ok"))
        outcomes = {}
        for k, arm in enumerate(pset.arms):
            if status == "interrupt" and arm.variant.batch_size == failing:
                raise KeyboardInterrupt
            outcome = pairs.ArmOutcome(
                _result(status if arm.variant.batch_size == failing else "ok"), 0.5, 1.0, [k]
            )
            outcomes[arm.variant.id] = outcome
            if on_arm is not None:
                on_arm(arm.variant.id, outcome, 2.0, 1)
        return outcomes, 2.0, 1


def _result(status: str) -> dict[str, Any]:
    if status == "ok":
        return copy.deepcopy(OK_RESULT)
    return {"status": status, "reason": f"killed by SIGKILL (test: {status})"}


def test_retry_failed_reruns_only_sets_with_a_failed_or_timed_out_arm(monkeypatch, tmp_path):
    """Catches: a plain --resume rerunning faults, a diverged arm (a result, not a fault) retried,
    a timed-out one left alone, or a retry that runs again once every fault was retried ok."""
    script = {"g0-r0": (200, "timeout"), "g0-r1": (200, "diverged")}
    ctx, variants, out, fake = _paired(tmp_path, monkeypatch, script)
    first = out.read_text()
    fake.ran.clear()
    runner.run_plan(ctx, variants, out, resume=True, measure_peak=False)
    assert out.read_text() == first and fake.ran == []  # plain --resume: a faulty set is done
    runner.run_plan(ctx, variants, out, resume=True, retry_failed=True, measure_peak=False)
    assert [s for s, _ in fake.ran] == ["g0-r0"]  # not g0-r1: diverged is a result
    latest = {(r["variant"]["batch_size"], r["pairing"]["set"]): r["status"]
              for r in records.variant_records(records.read_records(out))}  # fmt: skip
    assert latest[(200, "g0-r0")] == "ok" and latest[(200, "g0-r1")] == "diverged"
    fake.ran.clear()
    runner.run_plan(ctx, variants, out, resume=True, retry_failed=True, measure_peak=False)
    assert fake.ran == []  # every fault was retried ok: nothing left to retry


def _paired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: dict[str, tuple[int, str]]
) -> Any:
    base = Variant(batch_size=100)
    variants = [base, dataclasses.replace(base, control=True), Variant(batch_size=200)]
    ctx = dataclasses.replace(_ctx(repeats=2, aa_control=True, max_workers=3), baseline_id=base.id)
    fake = FakeSets(script)
    monkeypatch.setattr(pairs, "run_set", fake)
    out = tmp_path / "results.jsonl"
    runner.run_plan(ctx, variants, out, measure_peak=False)
    return ctx, variants, out, fake


def test_retrying_a_failed_arm_of_a_paired_set_reruns_its_whole_set(monkeypatch, tmp_path):
    ctx, variants, out, fake = _paired(tmp_path, monkeypatch, {"g0-r1": (200, "failed")})
    assert [s for s, _ in fake.ran] == ["g0-r0", "g0-r1"]
    first = out.read_text()
    fake.ran.clear()
    runner.run_plan(ctx, variants, out, resume=True, retry_failed=True, measure_peak=False)
    assert fake.ran == [("g0-r1", [100, 100, 200])]  # the set, not the arm alone: still paired
    assert out.read_text().startswith(first)
    everything = records.read_records(out)
    assert len(records.variant_records(everything, all_attempts=True)) == 9
    latest = records.variant_records(everything)
    assert [r["status"] for r in latest] == ["ok"] * 6
    assert latest[3:] == records.variant_records(everything, all_attempts=True)[6:]  # the new set
    rows = aggregate.summarize_run(everything).rows
    assert {row["variant_id"]: row["repeats"] for row in rows} == {v.id: 2 for v in variants}


def test_an_interrupted_set_keeps_its_finished_arms_and_resume_runs_the_rest_alone(
    monkeypatch, tmp_path
):
    """Catches: a set's records written only at its end (an interruption loses its finished arms),
    a resume that reruns the finished arms, or the resumed arm paired with arms it never took turns
    with (its sitting must key it apart)."""
    base = Variant(batch_size=100)
    variants = [base, dataclasses.replace(base, control=True), Variant(batch_size=200)]
    ctx = dataclasses.replace(_ctx(repeats=2, aa_control=True, max_workers=3), baseline_id=base.id)
    fake = FakeSets({"g0-r1": (200, "interrupt")})
    monkeypatch.setattr(pairs, "run_set", fake)
    out = tmp_path / "results.jsonl"
    with pytest.raises(KeyboardInterrupt):
        runner.run_plan(ctx, variants, out, measure_peak=False)
    kept = records.variant_records(records.read_records(out))
    assert [(r["pairing"]["set"], r["variant"]["batch_size"]) for r in kept][-2:] == [
        ("g0-r1", 100),
        ("g0-r1", 100),
    ]
    fake.ran.clear()
    runner.run_plan(ctx, variants, out, resume=True, measure_peak=False)
    assert fake.ran == [("g0-r1", [200])]  # the unfinished arm alone
    latest = records.variant_records(records.read_records(out))
    assert len(latest) == 6
    resumed = latest[-1]
    assert resumed["pairing"]["sitting"] == 1 and len(resumed["pairing"]["arms"]) == 3
    base_r1 = next(
        r for r in latest if r["pairing"]["set"] == "g0-r1" and r["pairing"]["role"] == "baseline"
    )
    assert stats.set_key(resumed) != stats.set_key(base_r1)
    fake.ran.clear()
    runner.run_plan(ctx, variants, out, resume=True, measure_peak=False)
    assert fake.ran == []  # every arm of every set has its record now


def test_a_failed_set_beyond_the_minimum_is_rerun_whole_with_its_own_arms(monkeypatch, tmp_path):
    ctx, variants, out, fake = _paired(tmp_path, monkeypatch, {"g0-r1": (200, "failed")})
    fake.ran.clear()
    # As a run of one minimum round sees it, g0-r1 is a set its stopping rule added.
    one_round = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, repeats=1))
    existing = records.read_records(out)
    sets = runner.PairedRun(one_round, out, existing, variants, None, None, retry_failed=True)
    sets.run_minimum(lambda: None)
    assert fake.ran == []  # g0-r0 is done
    sets.retry_extra_sets()
    assert fake.ran == [("g0-r1", [100, 100, 200])]
    sets.retry_extra_sets()
    assert len(fake.ran) == 1  # retried ok: nothing left


def test_retry_failed_without_resume_is_a_usage_error_before_any_work(
    capsys, monkeypatch, tmp_path
):
    out = tmp_path / "r"

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("got past the usage check")

    for name in ("load_profile", "load_mnist"):
        monkeypatch.setattr(cli, name, refuse)
    monkeypatch.setattr(runner, "run_plan", refuse)
    code = cli.main(["run", "--profile", "quick", "--out", str(out), "--retry-failed"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        "mnist-bench: error: --retry-failed needs --resume: it reruns the failed jobs of a "
        "run's --out"
    ]
    assert not out.exists()


def test_the_resume_hint_of_a_retrying_run_keeps_retrying(tmp_path):
    argv = ["run", "--profile", "quick", "--resume", "--retry-failed"]
    args = cli.build_parser().parse_args(argv)
    hint = cli.resume_command(args, tmp_path)
    assert hint.endswith(f"--out {tmp_path} --resume --retry-failed")


# --- A machine probe that dies -----------------------------------------------------------------


def _probed_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, resume: bool = False, retry: bool = False
) -> Any:
    """A paired run of two rounds (sets faked in this process) and one GPU variant, whose real probe
    processes are ``tests.fake_worker probe`` (killed by SIGKILL at the 'between' point, no GPU)."""
    base = Variant(batch_size=100)
    variants = [
        base, dataclasses.replace(base, control=True), Variant(batch_size=200), Variant(device="gpu"),
    ]  # fmt: skip
    ctx = dataclasses.replace(_ctx(repeats=2, aa_control=True, max_workers=3), baseline_id=base.id)
    fake = FakeSets({})
    monkeypatch.setattr(pairs, "run_set", fake)
    lines: list[str] = []
    out = tmp_path / "results.jsonl"
    runner.run_plan(
        ctx, variants, out, resume=resume, retry_failed=retry,
        on_probe=lambda p: lines.append(probe_line(p)),
    )  # fmt: skip
    return out, fake, lines


def test_a_machine_probe_killed_midway_is_a_record_and_the_run_completes_its_sets(
    monkeypatch, tmp_path
):
    # The bug: `run` stopped with exit 2, "machine probe failed: killed by SIGKILL", after the
    # first round, though the probe only adds the machine's peak to the report.
    _fake_worker(monkeypatch, child, "probe")
    out, fake, lines = _probed_run(monkeypatch, tmp_path)
    assert [s for s, _ in fake.ran] == ["g0-r0", "g0-r1"]  # both rounds' sets ran
    everything = records.read_records(out)  # the failed probe's record is a valid one
    probes = [r["probe"] for r in records.probe_records(everything)]
    assert [(p["phase"], p["status"]) for p in probes] == [
        ("start", "ok"), ("between", "failed"), ("end", "ok"),
    ]  # fmt: skip
    _assert_oom_reason(probes[1]["reason"], rss=False)
    assert lines[1].startswith("probe (between): failed: killed by SIGKILL (signal 9)")
    summary = aggregate.summarize_run(everything)
    assert summary.peaks == {("cpu", "float32"): 1.0e10}  # from the probes that measured
    text = markdown.render_markdown(everything)
    assert "The machine probe midway through the run failed (killed by SIGKILL (signal 9)" in text
    assert "peak missing for that point" in text


def test_a_start_probe_that_dies_is_a_record_the_cpu_sets_run_and_resume_retries_the_gpu_job(
    monkeypatch, tmp_path
):
    # The bug: a killed start probe ended the whole run (exit 2) before its first set. Also caught:
    # a GPU job marked "skipped: no GPU visible" when the GPU list is unknown (a resume would then
    # never run it), and a resume reading the failed record as the start probe.
    _fake_worker(monkeypatch, child, "oom")
    out, fake, _ = _probed_run(monkeypatch, tmp_path)
    assert [s for s, _ in fake.ran] == ["g0-r0", "g0-r1"]  # the CPU arms' sets ran
    everything = records.read_records(out)
    gpu_jobs = [r for r in records.variant_records(everything) if r["variant"]["device"] == "gpu"]
    assert [(r["status"], r["reason"]) for r in gpu_jobs] == [("failed", skips.GPUS_UNKNOWN)] * 2
    assert [p["probe"]["status"] for p in records.probe_records(everything)] == ["failed"] * 3
    assert "peak missing for that point" in markdown.render_markdown(everything)
    _fake_worker(monkeypatch, child, "probe")
    _probed_run(monkeypatch, tmp_path, resume=True, retry=True)
    assert [s for s, _ in fake.ran] == ["g0-r0", "g0-r1"]  # nothing re-measured
    latest = records.latest_attempts(records.variant_records(records.read_records(out)))
    gpu_jobs = [r for r in latest if r["variant"]["device"] == "gpu"]
    assert len(gpu_jobs) == 2
    assert all(r["status"] == "skipped" and "no GPU visible" in r["reason"] for r in gpu_jobs)
    phases = [
        (p["probe"]["phase"], p["probe"]["status"])
        for p in records.probe_records(records.read_records(out))
    ]
    assert phases[:4] == [("start", "failed"), ("between", "failed"), ("end", "failed"),
                          ("start", "ok")]  # fmt: skip


def test_a_probe_record_that_did_not_measure_must_say_why(tmp_path):
    # Catches: a probe record with neither measurement nor reason read as a valid one.
    probe = next(r for r in _FIXTURE_RECORDS if r["kind"] == "probe")
    bad = probe | {"probe": {"phase": "between", "status": "failed"}}
    path = tmp_path / "results.jsonl"
    with pytest.raises(records.RecordError, match=r"'probe\.reason'"):
        records.append_record(path, bad)
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(records.RecordError, match=r"'probe\.reason'"):
        records.read_records(path)
