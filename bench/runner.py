"""Runs a plan of variants, each repeat in its own child process, appending one record per job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import envinfo, records
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
    hook: str | None = None  # 'module:function' giving run_variant kwargs; for experiments/tests
    machine: dict[str, Any] = field(default_factory=envinfo.machine_info)
    commit: dict[str, Any] = field(default_factory=lambda: envinfo.git_commit(REPO_ROOT))

    def envelope(self, kind: str) -> dict[str, Any]:
        return {
            "schema_version": records.SCHEMA_VERSION,
            "kind": kind,
            "run": {"id": self.run_id, "profile": self.profile, "baseline": self.baseline_id},
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
            child_job = {
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
