"""Make reports/interleave-bias: what short blocks cost, the same processes in short and long blocks.

    MNIST_BENCH_CACHE=.cache python scripts/interleave_bias.py --sets 10 --out reports/interleave-bias
    python scripts/interleave_bias.py --summarize reports/interleave-bias   # SUMMARY.md from records

The design and what the ratio means: docs/method.md, "What interleaving costs".
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import outputs, records, stats
from bench.plan.settings import DEFAULT_BLOCK_S, RunSettings
from bench.plan.variant import Variant
from bench.run import pairs, runner
from mnist_models.data import load_mnist

ARM = Variant(batch_size=32, validation="per_epoch", epochs=3)
ARMS = (ARM, dataclasses.replace(ARM, seed=1))


def schedule(round_index: int, cycle: int, short_s: float, long_s: float) -> float:
    """The block length of a round: `cycle` short rounds, then one long one, repeated."""
    return long_s if round_index % (cycle + 1) == cycle else short_s


def measure(out_dir: Path, sets: int, short_s: float, long_s: float, cycle: int) -> Path:
    """Run `sets` sets (resuming any already in out_dir/results.jsonl)."""
    results = out_dir / "results.jsonl"
    settings = RunSettings(repeats=sets, block_s=short_s)
    ctx = runner.RunContext(run_id=out_dir.name, profile="interleave-bias", settings=settings)
    existing = runner.records_to_resume(results, resume=True, shard="1/1")
    done = {r["pairing"]["set"] for r in records.variant_records(existing) if r.get("pairing")}
    for r in range(sets):
        pset = pairs.make_set(0, r, ARMS, baseline_id=None, groups=1)
        if pset.id in done:
            continue
        outcomes, set_s, rounds = pairs.run_set(
            pset,
            lambda arm: runner.job_description(ctx, runner.Job(arm.variant, arm.repeat)),
            settings,
            block_of=lambda k, _: schedule(k, cycle, short_s, long_s),
        )
        made = []
        for arm in pset.arms:
            o = outcomes[arm.variant.id]
            section = pairs.pairing_section(pset, arm, o, set_s, rounds, short_s, sets)
            section["schedule"] = {"cycle": cycle, "short_s": short_s, "long_s": long_s}
            job = runner.Job(arm.variant, arm.repeat)
            made.append(runner.variant_record(ctx, job, o.result, o.turns_s, section))
        records.append_records(results, made)
        print(f"set {pset.id}: {rounds} rounds, {set_s:.0f} s", flush=True)
    return results


def regime_steps(record: dict[str, Any]) -> dict[str, list[float]]:
    """A process's timed steps in short and in long blocks (openings and warm-up left out)."""
    timing, plan = record["timing"], record["pairing"]["schedule"]
    warmup = record["settings"]["warmup_steps"]
    out: dict[str, list[float]] = {"short": [], "long": []}
    for k, block in enumerate(stats.blocks(timing["step_ms_raw"], warmup, timing["pauses"])):
        long = schedule(k, plan["cycle"], plan["short_s"], plan["long_s"]) == plan["long_s"]
        out["long" if long else "short"] += block
    return out


def set_ratios(recs: list[dict[str, Any]]) -> list[float]:
    """Each set's log ratio, short ÷ long median step: the mean of its processes' log ratios."""
    by_set: dict[str, list[float]] = {}
    for r in records.variant_records(recs):
        if r["status"] == "ok":
            steps = regime_steps(r)
            ratio = stats.median(steps["short"]) / stats.median(steps["long"])
            by_set.setdefault(r["pairing"]["set"], []).append(math.log(ratio))
    return [statistics.fmean(v) for v in by_set.values()]


def summary(results: Path) -> str:
    """SUMMARY.md: the bias with its interval, and how it was measured."""
    recs = records.read_records(results)
    variants = records.variant_records(recs)
    plan = variants[0]["pairing"]["schedule"]
    machine = variants[0]["machine"]
    logs = set_ratios(recs)
    lines = [
        "# Interleaving bias: short blocks against long ones, in the same processes",
        "",
        f"Made by `python scripts/interleave_bias.py` from [`results.jsonl`](results.jsonl) "
        f"({len(variants)} processes in {len(logs)} paired sets; {machine['cpu_model']} × "
        f"{machine['cpu_cores']}, TensorFlow {machine['versions'].get('tensorflow')}, commit "
        f"`{variants[0]['commit'].get('id')}`, {variants[0]['created_utc']} UTC).",
        "",
        f"Each set ran `{ARM.id}` twice, as two fresh processes taking turns; every "
        f"{plan['cycle']} rounds of {plan['short_s']:g}-s blocks were followed by one round of a "
        f"{plan['long_s']:g}-s block. Ratio = median step in the short blocks ÷ median step in "
        "the long ones, per process (block openings and warm-up left out, as in every report).",
        "",
    ]
    if len(logs) >= 2:
        ci = stats.t_ratio_interval(logs)
        each = ", ".join(f"{math.exp(x):.3f}" for x in logs)
        lines += [
            f"**Short ÷ long median step: {ci.point:.3f} [{ci.lo:.3f}–{ci.hi:.3f}]** (geometric "
            f"mean over {len(logs)} sets, 95% t-interval over sets). Per set: {each}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/interleave-bias")
    parser.add_argument("--sets", type=int, default=10)
    parser.add_argument("--short", type=float, default=DEFAULT_BLOCK_S, help="short block, s")
    parser.add_argument("--long", type=float, default=1.0, help="long block, s")
    parser.add_argument("--cycle", type=int, default=10, help="short rounds per long one")
    parser.add_argument("--summarize", metavar="DIR", help="only write DIR/SUMMARY.md from records")
    args = parser.parse_args(argv)
    if args.summarize:
        results = Path(args.summarize) / "results.jsonl"
    else:
        if args.sets < 2:
            parser.error("--sets must be at least 2 (an interval needs two sets)")
        load_mnist()  # fetch and verify once, as `mnist-bench run` does
        results = measure(Path(args.out), args.sets, args.short, args.long, args.cycle)
    text = summary(results)
    outputs.write_atomic(results.parent / "SUMMARY.md", text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
