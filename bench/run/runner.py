"""Runs a plan of variants, each repeat in its own child process, appending one record per job."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import records, stats
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.run import envinfo
from bench.run.child import REPO_ROOT, run_child
from bench.run.cluster import run_workers


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
    shard: str = "1/1"  # which slice of the matrix this run measures ('I/N', see bench.plan.shard)
    hook: str | None = None  # 'module:function' giving run_variant kwargs; for experiments/tests
    machine: dict[str, Any] = field(default_factory=envinfo.machine_info)
    commit: dict[str, Any] = field(default_factory=lambda: envinfo.git_commit(REPO_ROOT))

    def envelope(self, kind: str) -> dict[str, Any]:
        """The fields every record of this run carries (see bench.records.envelope)."""
        run = {
            "id": self.run_id,
            "profile": self.profile,
            "baseline": self.baseline_id,
            "shard": self.shard,
        }
        return records.envelope(kind, run, self.machine, self.commit)


class RunError(RuntimeError):
    """The run cannot start or continue; the message says why and what to do."""


def records_to_resume(out_path: Path, *, resume: bool, shard: str) -> list[dict[str, Any]]:
    """The records a run continues from: none for a new file; refuses to mix runs or shards."""
    has_records = out_path.exists() and out_path.stat().st_size > 0
    if has_records and not resume:
        raise RunError(
            f"{out_path} already holds records; pass --resume to continue it, "
            "or --out to write elsewhere"
        )
    existing = records.read_records(out_path) if has_records else []
    other = {r["run"].get("shard", "1/1") for r in existing} - {shard}
    if other:
        raise RunError(
            f"{out_path} holds records of shard {sorted(other)[0]}, not {shard}; "
            "resume each shard into its own --out"
        )
    return existing


def probe_machine(ctx: RunContext, measure_peak: bool = True) -> dict[str, Any]:
    """List the GPUs TensorFlow sees and measure the matmul peak, in a child like every variant."""
    result, _ = run_child({"kind": "probe", "measure_peak": measure_peak}, timeout_s=600)
    if "probe" not in result:
        raise RunError(f"machine probe failed: {result.get('reason')}")
    return {**ctx.envelope("probe"), "probe": result["probe"]}


def skip_reason(variant: Variant, gpus: Sequence[str]) -> str | None:
    """Why a variant cannot run on this machine, or None. The one place such checks live."""
    missing = envinfo.missing_backend_modules(variant.backend)
    if missing:
        return (
            f"backend {variant.backend} is not installed here (no module {', '.join(missing)}); "
            f"pip install 'mnist-bench[{variant.backend}]'"
        )
    if variant.backend != "tensorflow":
        reason = _backend_skip_reason(variant)
        if reason:
            return reason
    on_tf = variant.backend == "tensorflow"
    if variant.device == "gpu" and not gpus:
        return "no GPU visible to TensorFlow on this machine (tf.config.list_physical_devices('GPU') is empty)"
    if variant.device == "gpu" and variant.replicas_in_sync > len(gpus):
        return (
            f"{variant.strategy} over {variant.replicas} GPUs needs {variant.replicas}, "
            f"TensorFlow sees {len(gpus)} on this machine"
        )
    # Both seen failing with Keras 3.15 / TensorFlow 2.21; measuring them would only record the error.
    if variant.strategy != "default" and variant.steps_per_execution > 1 and on_tf:
        return (
            "steps_per_execution > 1 under a tf.distribute strategy fails inside Keras' multi-step "
            "loop (InvalidArgumentError: You must feed a value for placeholder tensor "
            "'while/cond/Placeholder')"
        )
    if (
        on_tf
        and variant.strategy != "default"
        and variant.jit_compile is True  # "auto" resolves to no XLA under a strategy
        and variant.device == "cpu"
    ):
        return (
            "XLA cannot compile a strategy's cross-device work on CPU (multi_worker: 'Collectives "
            "are not yet implemented for CPU devices when compiling with XLA'; mirrored over "
            "logical CPUs: variables on another device)"
        )
    return None


def _backend_skip_reason(variant: Variant) -> str | None:
    """Combinations of a non-TensorFlow backend this harness cannot run, and why."""
    name = variant.backend
    if variant.device == "gpu":
        return (
            f"GPU on the {name} backend is not measured: the machine probe lists TensorFlow's GPUs "
            f"only, and {name} on a GPU has not been verified with this harness"
        )
    if variant.strategy == "multi_worker":
        return (
            "multi_worker is tf.distribute.MultiWorkerMirroredStrategy, which only the tensorflow "
            f"backend has (Keras' multi-process distribution on {name} is not wired here)"
        )
    if variant.strategy == "mirrored" and name != "jax":
        return (
            "mirrored is tf.distribute.MirroredStrategy on tensorflow and keras.distribution."
            f"DataParallel on jax; Keras 3.15 has no keras.distribution backend for {name} "
            "(keras/src/backend/ has distribution_lib for jax and tensorflow only)"
        )
    if name == "torch" and variant.steps_per_execution > 1:
        return (
            "the torch backend refuses it (ValueError: `steps_per_execution` must be 1 with the "
            f"PyTorch backend. Received: steps_per_execution={variant.steps_per_execution})"
        )
    return None


def variant_record(
    ctx: RunContext, job: Job, result: dict[str, Any], elapsed_s: float
) -> dict[str, Any]:
    """Wrap a child's result in the record envelope; a successful one gets a summary for people."""
    record = {
        **ctx.envelope("variant"),
        "variant": job.variant.to_dict(),
        "variant_id": job.variant.id,
        "repeat": job.repeat,
        "seed": job.variant.seed + job.repeat,
        "settings": ctx.settings.record_section(),
        "job_s": elapsed_s,
        **result,
    }
    if record["status"] == "ok":
        record["summary"] = stats.repeat_stats(record)
    return record


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
                "settings": ctx.settings.record_section(),
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
    existing = records_to_resume(out_path, resume=resume, shard=ctx.shard)
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
