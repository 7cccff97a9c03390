"""Run a profile with a real per-step slowdown injected (tests.hooks:slow_1_3), for `compare` checks.

    MNIST_BENCH_CACHE=.cache python scripts/slowdown_run.py --profile default --out reports/slow

The hook busy-waits 0.3x the typical step after every step inside each job's process, so the
measured step is ~1.3x; `mnist-bench compare RUN/results.jsonl reports/slow/results.jsonl` must
then call those variants slower. Not a product flag: experiments go through the API.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.plan.matrix import load_profile
from bench.report.markdown import write_report
from bench.run import progress, runner
from mnist_models.data import load_mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--out", required=True)
    parser.add_argument("--hook", default="tests.hooks:slow_1_3")
    args = parser.parse_args()
    matrix = load_profile(args.profile)
    variants = matrix.variants()
    out = Path(args.out) / "results.jsonl"
    load_mnist()  # fetch and verify once, as `mnist-bench run` does
    ctx = runner.RunContext(
        run_id=Path(args.out).name,
        profile=matrix.name,
        settings=matrix.settings,
        baseline_id=variants[0].id,
        hook=args.hook,
    )
    runner.run_plan(
        ctx,
        variants,
        out,
        on_record=progress.print_record,
        on_probe=lambda p: print(progress.probe_line(p)),
    )
    print(write_report(out, out.parent))


if __name__ == "__main__":
    main()
