"""One job in a fresh interpreter: the worker's command line and environment, crash and hang handling.

Device visibility and dtype policies are process-global in TensorFlow, so every job gets its own
process; the parent only ever reads the JSON result the worker writes (or its absence).

Nothing outlives the parent, however it ends. Each worker asks the kernel to SIGKILL it when its
parent dies (``bench.run.worker.die_with_parent``; the parent's pid travels in ``PARENT_PID_ENV``).
Each job's temp dir (``job_dir``) is removed by the parent on every exit Python sees, and, for the
ones it does not (SIGKILL, a crash of the interpreter), by a tiny janitor process that waits for
end-of-file on a pipe only the parent holds: the kernel closes it whenever the parent dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.records import REASON_CHARS
from bench.run.worker import PARENT_PID_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMP_PREFIX = "mnist-bench-"
# Blocks until the parent closes the pipe or dies, then removes the directory (argv[1]).
_JANITOR = "import shutil, sys; sys.stdin.buffer.read(); shutil.rmtree(sys.argv[1], True)"


@contextlib.contextmanager
def job_dir() -> Iterator[Path]:
    """A fresh temp dir for one job's files, removed however this process ends (see above)."""
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    janitor = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _JANITOR, str(tmp)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal must not stop it before the parent
    )
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        assert janitor.stdin is not None
        janitor.stdin.close()
        try:
            janitor.wait(timeout=10)
        except subprocess.TimeoutExpired:
            janitor.kill()


def worker_command(job_path: Path, result_path: Path) -> list[str]:
    """The command that runs one job description and writes its result."""
    return [sys.executable, "-m", "bench.run.worker", str(job_path), str(result_path)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env[PARENT_PID_ENV] = str(os.getpid())  # the worker dies with this process
    return env


def run_child(job: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], float]:
    """Run one job in a fresh interpreter; a crash or hang becomes a failed/timeout result."""
    with job_dir() as tmp:
        job_path, result_path = tmp / "job.json", tmp / "result.json"
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
