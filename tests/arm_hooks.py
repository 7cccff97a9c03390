"""A hook that slows one arm of a run (RunContext.hook = 'tests.arm_hooks:slow_one_arm').

Apart from tests/hooks.py on purpose: importing that module imports tests.conftest, which hides the
GPUs (CUDA_VISIBLE_DEVICES) of any worker that loads it, and a slowed run's GPU arm must still see
its GPU. scripts/prove_matrix.py sets SLOW_ARM_ENV for its slowed runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.measure.ab_runs import ExtraWork

# JSON {"arm": variant id, "fields": its fields but the seed, "extra": fraction}.
SLOW_ARM_ENV = "MNIST_BENCH_SLOW_ARM"


def slow_one_arm() -> dict[str, Any]:
    """The arm SLOW_ARM_ENV names busy-waits `extra` × each training step's own time after that
    step (ExtraWork 'uniform'); every other arm trains unchanged. The job file is the worker's
    argv[1]; its variant carries the repeat's own seed, so the arm is matched on the other fields."""
    spec = os.environ.get(SLOW_ARM_ENV)
    if not spec:  # a "slowed" run that slows nothing must fail loudly, not pass for unchanged
        raise RuntimeError(f"tests.arm_hooks:slow_one_arm needs {SLOW_ARM_ENV} (arm and extra)")
    wanted = json.loads(spec)
    job = json.loads(Path(sys.argv[1]).read_text())
    fields = {k: v for k, v in job["variant"].items() if k != "seed"}
    if fields != wanted["fields"]:
        return {}
    return {"callbacks": [ExtraWork("uniform", float(wanted["extra"]))]}
