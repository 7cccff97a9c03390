"""One job in a fresh interpreter: the worker's command line and environment, crash and hang handling.

Device visibility and dtype policies are process-global in TensorFlow, so every job gets its own
process; the parent only ever reads the JSON result the worker writes (or its absence).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.records import REASON_CHARS

REPO_ROOT = Path(__file__).resolve().parents[2]


def worker_command(job_path: Path, result_path: Path) -> list[str]:
    """The command that runs one job description and writes its result."""
    return [sys.executable, "-m", "bench.run.worker", str(job_path), str(result_path)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_child(job: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], float]:
    """Run one job in a fresh interpreter; a crash or hang becomes a failed/timeout result."""
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        cmd = worker_command(job_path, result_path)
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            elapsed = time.perf_counter() - start
            return {
                "status": "timeout",
                "reason": f"killed after the {timeout_s:g} s limit",
            }, elapsed
        elapsed = time.perf_counter() - start
        if result_path.exists():
            return json.loads(result_path.read_text()), elapsed
        tail = (proc.stderr or proc.stdout or "").strip()[-REASON_CHARS:]
        reason = f"child process exited with code {proc.returncode} without a result: {tail}"
        return {"status": "failed", "reason": reason}, elapsed
