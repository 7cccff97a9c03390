"""scripts/interleave_bias.py's measuring path, its processes replaced by the committed records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import records
from tests.conftest import load_script

REPORT = Path(__file__).parent.parent / "reports" / "interleave-bias"
# What a worker's result holds: a committed record without what variant_record wraps around it.
WRAPPED = {"variant", "variant_id", "repeat", "seed", "settings", "job_s", "pairing", "summary"}


def test_measure_runs_each_set_once_and_resumes_where_it_stopped(tmp_path, monkeypatch):
    """Bugs: a change to bench.run (runner's record and resume helpers, the paired-set API) breaks
    the script's measuring path, which no other test runs; a resumed campaign measures again the
    sets it already has; the records it writes cannot be summarised."""
    bias = load_script("interleave_bias")
    committed = records.variant_records(records.read_records(REPORT / "results.jsonl"))
    first_set = {r["variant_id"]: r for r in committed if r["pairing"]["set"] == "g0-r0"}
    envelope = set(records.envelope("variant", {}, {}, {}))
    ran: list[str] = []

    def run_set(pset: Any, job_of: Any, settings: Any, *, block_of: Any) -> Any:
        ran.append(pset.id)
        outcomes = {}
        for arm in pset.arms:
            assert job_of(arm)["variant"]["epochs"] == 3  # the worker job it would start
            rec = first_set[arm.variant.id]
            result = {k: v for k, v in rec.items() if k not in WRAPPED | envelope}
            outcomes[arm.variant.id] = bias.pairs.ArmOutcome(
                result=result, startup_s=1.0, turns_s=2.0, turns=rec["pairing"]["turns"]
            )
        return outcomes, 30.0, rec["pairing"]["rounds"]

    monkeypatch.setattr(bias.pairs, "run_set", run_set)
    out = tmp_path / "bias"
    results = bias.measure(out, 2, 0.1, 1.0, 10)
    assert ran == ["g0-r0", "g0-r1"]
    bias.measure(out, 3, 0.1, 1.0, 10)
    assert ran == ["g0-r0", "g0-r1", "g0-r2"]
    text = bias.summary(results)
    assert "6 processes in 3 paired sets" in text and "**Short ÷ long median step: " in text
