"""Runs a plan of variants, each repeat in its own child process, appending one record per job."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import distribute, envinfo, records
from bench.variant import Variant

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunSettings:
    """Run-level settings, recorded with every result."""

    repeats: int = 1
    warmup_steps: int = 10
    target_accuracy: float = 0.97
    timeout_s: float = 1800.0


@dataclass(frozen=True)
class Job:
    variant: Variant
    repeat: int


@dataclass
class RunContext:
    """Everything a run stamps on its records, gathered once before the first job."""

    run_id: str
    profile: str
    settings: RunSettings
    data_path: str | None = None
    baseline_id: str | None = None  # the variant reports compare every other one against
    shard: str = "1/1"  # which slice of the matrix this run measures ('I/N', see bench.shard)
    hook: str | None = None  # 'module:function' giving run_variant kwargs; for experiments/tests
    machine: dict[str, Any] = field(default_factory=envinfo.machine_info)
    commit: dict[str, Any] = field(default_factory=lambda: envinfo.git_commit(REPO_ROOT))

    def envelope(self, kind: str) -> dict[str, Any]:
        return {
            "schema_version": records.SCHEMA_VERSION,
            "kind": kind,
            "run": {
                "id": self.run_id,
                "profile": self.profile,
                "baseline": self.baseline_id,
                "shard": self.shard,
            },
            "created_utc": records.utc_now(),
            "machine": self.machine,
            "commit": self.commit,
        }


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_child(job: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], float]:
    """Run one job in a fresh interpreter; a crash or hang becomes a failed/timeout result."""
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        cmd = [sys.executable, "-m", "bench.worker", str(job_path), str(result_path)]
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                env=_child_env(),
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
        tail = (proc.stderr or proc.stdout or "").strip()[-1500:]
        reason = f"child process exited with code {proc.returncode} without a result: {tail}"
        return {"status": "failed", "reason": reason}, elapsed


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Each worker leads its own process group, so this reaches nothing but it and its children.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _worker_summary(index: int, code: int | None, result: dict[str, Any] | None) -> dict[str, Any]:
    timing = (result or {}).get("timing") or {}
    return {
        "index": index,
        "exit_code": code,
        "status": (result or {}).get("status"),
        "step_ms_median": (timing.get("step_ms") or {}).get("median"),
        "peak_rss_bytes": ((result or {}).get("memory") or {}).get("peak_rss_bytes"),
    }


def run_workers(
    job: dict[str, Any], workers: int, device: str, timeout_s: float
) -> tuple[dict[str, Any], float]:
    """Run a multi_worker job as `workers` processes on loopback ports, each with its own TF_CONFIG.

    The chief's (worker 0's) result becomes the record. Workers wait on each other in every
    collective, so the first one to fail or exit without a result stops them all, and so does
    the time limit: either way one failed/timeout result comes back, naming the worker.
    """
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp:
        job_path = Path(tmp) / "job.json"
        job_path.write_text(json.dumps(job))
        results = [Path(tmp) / f"result-{i}.json" for i in range(workers)]
        logs = [Path(tmp) / f"worker-{i}.log" for i in range(workers)]
        ports = distribute.free_ports(workers)
        procs: list[subprocess.Popen[bytes]] = []
        start = time.perf_counter()
        try:
            for i in range(workers):
                with logs[i].open("wb") as log:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "bench.worker", str(job_path), str(results[i])],
                            env=_child_env() | distribute.worker_env(ports, i, device),
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            first_broken, timed_out = None, False
            while any(p.poll() is None for p in procs):
                for i, p in enumerate(procs):
                    if p.poll() is not None and _read_status(results[i]) != "ok":
                        first_broken = i
                        break
                if first_broken is not None:
                    break
                if time.perf_counter() - start > timeout_s:
                    timed_out = True
                    break
                time.sleep(0.2)
            if first_broken is None and not timed_out:
                first_broken = next(
                    (i for i in range(workers) if _read_status(results[i]) != "ok"), None
                )
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
            broken = outcome[first_broken]
            if broken is None:
                tail = logs[first_broken].read_text(errors="replace").strip()[-1500:]
                reason = (
                    f"multi_worker worker {first_broken} exited with code "
                    f"{procs[first_broken].returncode} without a result: {tail}"
                )
                return {
                    "status": "failed",
                    "reason": reason,
                    "worker_processes": summaries,
                }, elapsed
            if first_broken != 0 or broken["status"] == "failed":
                stopped = "; the other workers were stopped" if workers > 1 else ""
                return {
                    **broken,
                    "reason": f"multi_worker worker {first_broken}: {broken['reason']}{stopped}",
                    "worker_processes": summaries,
                }, elapsed
        return {**outcome[0], "worker_processes": summaries}, elapsed  # type: ignore[dict-item]


def _read_status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        return None


class RunError(RuntimeError):
    """The run cannot start or continue; the message says why and what to do."""


def probe_machine(ctx: RunContext, measure_peak: bool = True) -> dict[str, Any]:
    """List the GPUs TensorFlow sees and measure the matmul peak, in a child like every variant."""
    result, _ = run_child({"kind": "probe", "measure_peak": measure_peak}, timeout_s=600)
    if "probe" not in result:
        raise RunError(f"machine probe failed: {result.get('reason')}")
    return {**ctx.envelope("probe"), "probe": result["probe"]}


def skip_reason(variant: Variant, gpus: Sequence[str]) -> str | None:
    """Why a variant cannot run on this machine, or None. The one place such checks live."""
    if variant.device == "gpu" and not gpus:
        return "no GPU visible to TensorFlow on this machine (tf.config.list_physical_devices('GPU') is empty)"
    if variant.device == "gpu" and variant.replicas_in_sync > len(gpus):
        return (
            f"{variant.strategy} over {variant.replicas} GPUs needs {variant.replicas}, "
            f"TensorFlow sees {len(gpus)} on this machine"
        )
    # Both seen failing with Keras 3.15 / TensorFlow 2.21; measuring them would only record the error.
    if variant.strategy != "default" and variant.steps_per_execution > 1:
        return (
            "steps_per_execution > 1 under a tf.distribute strategy fails inside Keras' multi-step "
            "loop (InvalidArgumentError: You must feed a value for placeholder tensor "
            "'while/cond/Placeholder')"
        )
    if variant.strategy != "default" and variant.jit_compile and variant.device == "cpu":
        return (
            "XLA cannot compile a strategy's cross-device work on CPU (multi_worker: 'Collectives "
            "are not yet implemented for CPU devices when compiling with XLA'; mirrored over "
            "logical CPUs: variables on another device)"
        )
    return None


def variant_record(
    ctx: RunContext, job: Job, result: dict[str, Any], elapsed_s: float
) -> dict[str, Any]:
    """Wrap a child's result in the record envelope."""
    return {
        **ctx.envelope("variant"),
        "variant": job.variant.to_dict(),
        "variant_id": job.variant.id,
        "repeat": job.repeat,
        "seed": job.variant.seed + job.repeat,
        "settings": {
            "warmup_steps": ctx.settings.warmup_steps,
            "target_accuracy": ctx.settings.target_accuracy,
            "timeout_s": ctx.settings.timeout_s,
        },
        "job_s": elapsed_s,
        **result,
    }


def jobs_for(variants: Sequence[Variant], repeats: int) -> list[Job]:
    """Repeats interleaved (all variants once, then again) so slow drift spreads over variants."""
    return [Job(v, r) for r in range(repeats) for v in variants]


def run_jobs(
    ctx: RunContext,
    jobs: Sequence[Job],
    out_path: Path,
    *,
    gpus: Sequence[str],
    on_record: Callable[[dict[str, Any], int, int, float], None] | None = None,
) -> int:
    """Run jobs in order, appending each record as it finishes; returns how many ran."""
    started = time.perf_counter()
    for index, job in enumerate(jobs, start=1):
        reason = skip_reason(job.variant, gpus)
        if reason:
            result, elapsed = {"status": "skipped", "reason": reason}, 0.0
        else:
            child_job: dict[str, Any] = {
                "kind": "variant",
                "variant": job.variant.to_dict(),
                "repeat": job.repeat,
                "settings": {
                    "warmup_steps": ctx.settings.warmup_steps,
                    "target_accuracy": ctx.settings.target_accuracy,
                },
                "data_path": ctx.data_path,
                "hook": ctx.hook,
            }
            # Each repeat gets its own seed so repeats sample initialisation noise too.
            child_job["variant"]["seed"] = job.variant.seed + job.repeat
            if job.variant.strategy == "multi_worker":
                result, elapsed = run_workers(
                    child_job, job.variant.replicas, job.variant.device, ctx.settings.timeout_s
                )
            else:
                result, elapsed = run_child(child_job, ctx.settings.timeout_s)
        record = variant_record(ctx, job, result, elapsed)
        records.append_record(out_path, record)
        if on_record:
            on_record(record, index, len(jobs), time.perf_counter() - started)
    return len(jobs)


def run_plan(
    ctx: RunContext,
    variants: Sequence[Variant],
    out_path: Path,
    *,
    resume: bool = False,
    measure_peak: bool = True,
    on_record: Callable[[dict[str, Any], int, int, float], None] | None = None,
    on_probe: Callable[[dict[str, Any]], None] | None = None,
) -> list[Job]:
    """Probe the machine once, then run every (variant, repeat) not yet in out_path."""
    has_records = out_path.exists() and out_path.stat().st_size > 0
    if has_records and not resume:
        raise RunError(
            f"{out_path} already holds records; pass --resume to continue it, "
            "or --out to write elsewhere"
        )
    existing = records.read_records(out_path) if has_records else []
    other = {r["run"].get("shard", "1/1") for r in existing} - {ctx.shard}
    if other:
        raise RunError(
            f"{out_path} holds records of shard {sorted(other)[0]}, not {ctx.shard}; "
            "resume each shard into its own --out"
        )
    done = {(r["variant_id"], r["repeat"]) for r in records.variant_records(existing)}
    jobs = [
        j for j in jobs_for(variants, ctx.settings.repeats) if (j.variant.id, j.repeat) not in done
    ]
    probes = records.probe_records(existing)
    probe = probes[-1] if probes else probe_machine(ctx, measure_peak)
    if not probes:
        records.append_record(out_path, probe)
    if on_probe:
        on_probe(probe)
    run_jobs(ctx, jobs, out_path, gpus=probe["probe"]["gpus"], on_record=on_record)
    return jobs
