"""Per-block CPU and steal seconds: reading /proc/stat, the record's blocks, and contention flags."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from bench import records
from bench.measure import cputime
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.report import aggregate, contention, findings, markdown
from bench.run import runner
from tests import synthetic

# The head of a real /proc/stat (a KVM guest); the aggregate line's 8th value (steal) is 1234.
PROC_STAT = """\
cpu  4705 150 1120 1000000 260 0 48 1234 0 0
cpu0 2353 75 560 500000 130 0 24 617 0 0
cpu1 2352 75 560 500000 130 0 24 617 0 0
intr 114930548 113199788 3 0 5 263 0 4 [... lots more numbers ...]
ctxt 1990473
btime 1062191376
"""


def test_steal_is_the_eighth_value_of_the_aggregate_cpu_line():
    """Bug caught: reading a per-CPU line (cpu0) or the wrong column (guest, iowait)."""
    assert cputime.steal_ticks(PROC_STAT) == 1234


def test_a_proc_stat_without_a_steal_column_or_cpu_line_gives_none():
    """Bug caught: an IndexError (or a zero passed off as a reading) on kernels before 2.6.11."""
    assert cputime.steal_ticks("cpu  4705 150 1120 1000000 260 0 48\n") is None
    assert cputime.steal_ticks("intr 1 2 3\n") is None
    assert cputime.steal_ticks("") is None


def test_no_proc_stat_is_null_steal_never_a_crash(tmp_path):
    """Bug caught: a job on a system without /proc dies reading it instead of recording null."""
    assert cputime.machine_steal_s(tmp_path / "absent") is None
    (tmp_path / "stat").write_text(PROC_STAT)
    steal = cputime.machine_steal_s(tmp_path / "stat")
    assert steal is not None and steal * os.sysconf("SC_CLK_TCK") == pytest.approx(1234)


def test_a_block_is_the_difference_of_two_readings_and_keeps_null_steal():
    """Bug caught: end − start swapped, or a missing steal reading turned into a number."""
    start, end = cputime.Reading(10.0, 3.0, 5.0), cputime.Reading(10.5, 3.4, 5.01)
    assert cputime.block(start, end, 7) == {
        "steps": 7,
        "wall_s": 0.5,
        "cpu_s": 0.4,
        "steal_s": 0.01,
    }
    assert cputime.block(start, dataclasses.replace(end, steal_s=None), 7)["steal_s"] is None


def _arm(variant: Variant, set_id: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """An ok record of an arm in set `set_id` ('g0-rN': its repeat is N) with these blocks."""
    rec = synthetic.variant_record(variant, int(set_id.split("-r")[1]), [10.0] * 20)
    rec["pairing"] = {
        "set": set_id, "group": 0, "round": 0, "extra": False, "role": "arm",
        "arms": [variant.id], "block_s": 0.5, "rounds": len(blocks), "turns": [0] * len(blocks),
        "startup_s": 5.0, "set_s": 30.0,
    }  # fmt: skip
    rec["timing"]["blocks"] = blocks
    return rec


def _blocks(cpu_per_wall: float, steal_s: float | None, n: int = 5) -> list[dict[str, Any]]:
    return [
        {"steps": 50, "wall_s": 0.5, "cpu_s": 0.5 * cpu_per_wall, "steal_s": steal_s}
        for _ in range(n)
    ]


def test_an_old_paired_record_upgrades_to_null_blocks_and_a_plain_one_gains_nothing():
    """Bug caught: a version-3 arm read without `timing.blocks` (a KeyError in readers), or a
    plain job given blocks it never had."""
    arm = _arm(Variant(), "g0-r0", []) | {"schema_version": 3}
    del arm["timing"]["blocks"]
    records.check_record(arm, "old:1")
    upgraded = records.upgrade(arm)
    assert upgraded["schema_version"] == records.SCHEMA_VERSION
    assert upgraded["timing"]["blocks"] is None
    assert "blocks" not in arm["timing"]  # the record read is not changed in place
    plain = synthetic.variant_record(Variant(), 0, [10.0] * 20) | {"schema_version": 3}
    assert records.upgrade(plain) == plain | {"schema_version": records.SCHEMA_VERSION}
    assert contention.set_usage([upgraded]) == []  # not recorded: nothing to judge


def test_blocks_are_checked_field_by_field():
    """Bug caught: a block without wall seconds, or with CPU as text, passes into the report."""
    ok = _arm(Variant(), "g0-r0", _blocks(1.0, 0.0))
    records.check_record(ok, "r:1")
    for bad in ({"steps": 5, "cpu_s": 0.1, "steal_s": 0.0}, {**_blocks(1, 0)[0], "cpu_s": "0.1"}):
        rec = _arm(Variant(), "g0-r0", [bad])
        with pytest.raises(records.RecordError, match=r"'timing\.blocks' must be null or a list"):
            records.check_record(rec, "r:1")


def test_a_contended_set_is_flagged_and_a_quiet_one_is_not():
    """Bug caught: flags that read the wrong set's blocks, a threshold compared the wrong way, or
    a GPU arm (which waits for its device) taken for a starved one."""
    base, other = Variant(batch_size=32), Variant(batch_size=512)
    gpu = Variant(batch_size=64, device="gpu")
    quiet = [_arm(v, "g0-r0", _blocks(1.3, 0.0)) for v in (base, other)]
    quiet.append(_arm(gpu, "g0-r0", _blocks(0.2, 0.0)))
    starved = [_arm(base, "g0-r1", _blocks(1.3, 0.0)), _arm(other, "g0-r1", _blocks(0.5, 0.0))]
    stolen = [_arm(v, "g0-r2", _blocks(1.3, 0.02)) for v in (base, other)]  # 4% of 0.5 s
    summary = aggregate.summarize_run([*quiet, *starved, *stolen])
    by_set = {u.set_id: u for u in summary.contention}
    assert by_set["g0-r0"].reasons == []
    assert by_set["g0-r1"].reasons == [f"`{other.id}` CPU ÷ wall 0.50"]
    assert by_set["g0-r2"].reasons == ["steal 4.0% of its blocks' wall"]
    warning = [f for f in findings.findings(summary) if "shared the machine" in f]
    assert len(warning) == 1 and "`g0-r1`" in warning[0] and "`g0-r2`" in warning[0]
    assert "`g0-r0`" not in warning[0]
    (line,) = contention.contention_line(summary.contention)
    assert line in markdown.render_markdown([*quiet, *starved, *stolen])
    assert "over 3 set(s)" in line and ": 2 here." in line


def test_two_merged_runs_sets_of_one_name_are_judged_apart():
    """Bug caught: sets grouped by name alone, so a merged file's two runs' `g0-r0` (two machine
    moments) became one set, and a quiet run's blocks diluted a starved run's."""
    base, other = Variant(batch_size=32), Variant(batch_size=512)
    quiet = [_arm(v, "g0-r0", _blocks(1.3, 0.0)) for v in (base, other)]
    starved = [_arm(base, "g0-r0", _blocks(1.3, 0.0)), _arm(other, "g0-r0", _blocks(0.5, 0.0))]
    for rec in starved:
        rec["run"] = {**rec["run"], "id": "other-run"}
    usages = {u.set_id: u for u in contention.set_usage([*quiet, *starved])}
    assert len(usages) == 2
    assert usages["other-run/g0-r0"].reasons == [f"`{other.id}` CPU ÷ wall 0.50"]
    (quiet_id,) = set(usages) - {"other-run/g0-r0"}
    assert usages[quiet_id].reasons == []


def test_a_run_without_contention_or_block_records_adds_no_warning():
    """Bug caught: a warning (or a method line) for runs that recorded nothing to judge."""
    quiet = aggregate.summarize_run([_arm(Variant(), "g0-r0", _blocks(1.0, None))])
    assert not any("shared the machine" in f for f in findings.findings(quiet))
    assert "steal could not be read" in contention.contention_line(quiet.contention)[0]
    old = aggregate.summarize_run(synthetic.arm_records(Variant(), [10.0, 10.0]))
    assert old.contention == [] and contention.contention_line(old.contention) == []


@pytest.mark.slow  # starts real workers that train
def test_a_real_paired_set_records_cpu_and_steal_per_block(tmp_path: Path, real_mnist):
    """Bug caught: blocks never reach the record, or CPU is read in the driver (≈ 0 s for a
    process that only waits) instead of inside the arm."""
    base = Variant(batch_size=100, validation="end_only")
    settings = RunSettings(repeats=1, warmup_steps=2, timeout_s=300, block_s=0.05)
    ctx = runner.RunContext(run_id="t", profile="t", settings=settings, hook="tests.hooks:small")
    ctx = dataclasses.replace(ctx, baseline_id=base.id)
    out = tmp_path / "results.jsonl"
    runner.run_plan(ctx, [base, Variant(batch_size=50)], out, measure_peak=False)
    recs = records.variant_records(records.read_records(out))
    assert len(recs) == 2
    for rec in recs:
        blocks = rec["timing"]["blocks"]
        assert (
            len(blocks) == len(rec["timing"]["pauses"]) + 1
        )  # they end at the pauses and at the end
        steps = rec["timing"]["steps_per_epoch"] * rec["variant"]["epochs"]
        assert sum(b["steps"] for b in blocks) == steps
        for b in blocks:
            assert b["wall_s"] > 0 and isinstance(b["cpu_s"], float)
            assert b["steal_s"] is None or b["steal_s"] >= 0
        assert sum(b["cpu_s"] for b in blocks) > 0
    assert [u.set_id for u in aggregate.summarize_run(records.read_records(out)).contention] == [
        "g0-r0"
    ]
