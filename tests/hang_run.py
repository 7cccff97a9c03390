"""Test-only entry: run one job whose worker hangs (tests.hooks:hang), so a test can kill us.

    python -m tests.hang_run OUT.jsonl default|multi_worker

No machine probe: the job goes straight to runner.run_jobs, as run_plan would send it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.run import runner


def main(out: str, strategy: str) -> int:
    ctx = runner.RunContext(
        run_id="hang",
        profile="test",
        settings=RunSettings(timeout_s=600),
        hook="tests.hooks:hang",
    )
    variant = Variant(batch_size=100, strategy=strategy)
    runner.run_jobs(ctx, [runner.Job(variant, 0)], Path(out), gpus={})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
