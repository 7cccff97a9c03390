"""multi_worker jobs from the parent's side: loopback ports, TF_CONFIG, and the worker processes.

No TensorFlow here: each worker process imports it itself (``bench.run.worker``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import stats
from bench.measure.distribute import TF_CONFIG  # no TensorFlow at import
from bench.run.child import child_env, exit_reason, job_dir, peak_rss_bytes, worker_command

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on the loopback interface right now."""
    sockets = []
    try:
        for _ in range(count):  # all held open together, so the kernel hands out distinct ports
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: Sequence[int], index: int) -> str:
    """TF_CONFIG for worker `index` of a cluster of loopback workers (worker 0 is the chief)."""
    return json.dumps(
        {
            "cluster": {"worker": [f"{LOOPBACK}:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def worker_env(ports: Sequence[int], index: int, device: str) -> dict[str, str]:
    """Environment additions for one multi_worker process: its TF_CONFIG, and its own GPU."""
    env = {TF_CONFIG: tf_config(ports, index)}
    if device == "gpu":
        # One GPU per worker, counted within whatever this process was already allowed to see.
        visible = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[index] if visible else str(index)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Each worker leads its own process group, so this reaches nothing but it and its children.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _worker_summary(index: int, code: int | None, result: dict[str, Any] | None) -> dict[str, Any]:
    raw = ((result or {}).get("timing") or {}).get("step_ms_raw") or []
    steps = [s for epoch in raw for s in epoch][1:]  # all but the trace call
    return {
        "index": index,
        "exit_code": code,
        "status": (result or {}).get("status"),
        "step_ms_median": stats.median(steps) if steps else None,
        "peak_rss_bytes": ((result or {}).get("memory") or {}).get("peak_rss_bytes"),
    }


def run_workers(
    job: dict[str, Any], workers: int, device: str, timeout_s: float
) -> tuple[dict[str, Any], float]:
    """Run a multi_worker job as `workers` processes on loopback ports, each with its own TF_CONFIG.

    The chief's (worker 0's) result becomes the record. Workers wait on each other in every
    collective, so the first one to fail or exit without a result stops them all, and so does
    the time limit: either way one failed/timeout result comes back, naming the worker. Each
    worker leads its own session (so stopping one stops its whole group) and still dies with
    this process (see bench.run.child).
    """
    with job_dir() as tmp:
        job_path = tmp / "job.json"
        job_path.write_text(json.dumps(job))
        results = [tmp / f"result-{i}.json" for i in range(workers)]
        logs = [tmp / f"worker-{i}.log" for i in range(workers)]
        ports = free_ports(workers)
        procs: list[subprocess.Popen[bytes]] = []
        start = time.perf_counter()
        try:
            for i in range(workers):
                with logs[i].open("wb") as log:
                    procs.append(
                        subprocess.Popen(
                            worker_command(job_path, results[i]),
                            env=child_env() | worker_env(ports, i, device),
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            watch = _WorkerWatch(procs, start)
            first_broken, timed_out = _wait_for_workers(procs, results, watch, timeout_s)
        finally:
            for p in procs:
                _kill_group(p)
        elapsed = time.perf_counter() - start
        outcome = [json.loads(r.read_text()) if r.exists() else None for r in results]
        summaries = [_worker_summary(i, p.returncode, outcome[i]) for i, p in enumerate(procs)]
        if timed_out:
            reason = (
                f"killed after the {timeout_s:g} s limit (all {workers} multi_worker processes)"
            )
            return {"status": "timeout", "reason": reason, "worker_processes": summaries}, elapsed
        if first_broken is not None:
            broken = _broken_result(first_broken, outcome, procs, logs, watch)
            if broken is not None:
                return {**broken, "worker_processes": summaries}, elapsed
        return {**outcome[0], "worker_processes": summaries}, elapsed  # type: ignore[dict-item]


class _WorkerWatch:
    """Each worker's last peak RSS read while it ran, and when each was first seen ended."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], start: float) -> None:
        self.procs, self.start = procs, start
        self.rss: dict[int, int] = {}
        self.ended_s: dict[int, float] = {}

    def poll(self) -> None:
        for i, p in enumerate(self.procs):
            if p.poll() is None:
                self.rss[i] = peak_rss_bytes(p.pid) or self.rss.get(i, 0)
            else:
                self.ended_s.setdefault(i, time.perf_counter() - self.start)

    def elapsed(self, index: int) -> float:
        """Seconds from the start to when worker `index` was first seen ended (or now)."""
        return self.ended_s.get(index, time.perf_counter() - self.start)


def _wait_for_workers(
    procs: list[subprocess.Popen[bytes]], results: list[Path], watch: _WorkerWatch, timeout_s: float
) -> tuple[int | None, bool]:
    """(the first worker that ended without an ok result or None, whether the time limit hit)."""
    while any(p.poll() is None for p in procs):
        watch.poll()
        for i, p in enumerate(procs):
            if p.poll() is not None and _read_status(results[i]) != "ok":
                return i, False
        if time.perf_counter() - watch.start > timeout_s:
            return None, True
        time.sleep(0.2)
    watch.poll()
    return next((i for i in range(len(procs)) if _read_status(results[i]) != "ok"), None), False


def _broken_result(
    index: int,
    outcome: list[dict[str, Any] | None],
    procs: list[subprocess.Popen[bytes]],
    logs: list[Path],
    watch: _WorkerWatch,
) -> dict[str, Any] | None:
    """The record for a job whose worker `index` broke; None when the chief's result stands.

    A non-chief worker that ended ok-less and the chief's own "failed" both fail the job; the
    chief's other statuses (e.g. "skipped") stand as they are.
    """
    broken = outcome[index]
    if broken is None:
        reason = exit_reason(
            procs[index].returncode,
            logs[index].read_text(errors="replace"),
            watch.elapsed(index),
            watch.rss.get(index) or None,
            who=f"multi_worker worker {index}",
        )
        return {"status": "failed", "reason": reason}
    if index != 0 or broken["status"] == "failed":
        stopped = "; the other workers were stopped" if len(procs) > 1 else ""
        return {**broken, "reason": f"multi_worker worker {index}: {broken['reason']}{stopped}"}
    return None


def _read_status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        return None
