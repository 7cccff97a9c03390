"""Runs a plan of variants, each repeat in its own child process, appending one record per job.

What a run measures is stamped on its file so that ``--resume`` only ever continues the same run:
``plan_of`` describes the whole matrix (every variant id, sorted, and the baseline) and the run
settings; every record of the run carries its hash as ``run.fingerprint``, and the run's probe
record (the file's first) carries the description itself as ``run.plan``, so a mismatch can be
named (``records_to_resume``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import envinfo, records, stats
from bench.plan.pairing import group_arms, runs_in_one_process, set_id
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.run import pairs
from bench.run.child import REPO_ROOT, run_child
from bench.run.cluster import run_workers

# The A/A control is the baseline's configuration with seeds of its own: repeat r of the control
# is seeded seed + r + this, never one of the baseline's.
CONTROL_SEED_OFFSET = 10_000


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
    plan: dict[str, Any] | None = None  # plan_of(the whole matrix); None: nothing to check against
    machine: dict[str, Any] = field(default_factory=envinfo.machine_info)
    commit: dict[str, Any] = field(default_factory=lambda: envinfo.git_commit(REPO_ROOT))

    def envelope(self, kind: str) -> dict[str, Any]:
        """The fields every record of this run carries (see bench.records.envelope)."""
        run: dict[str, Any] = {
            "id": self.run_id,
            "profile": self.profile,
            "baseline": self.baseline_id,
            "shard": self.shard,
        }
        if self.plan is not None:
            run["fingerprint"] = fingerprint(self.plan)
            if kind == "probe":
                run["plan"] = self.plan
        return records.envelope(kind, run, self.machine, self.commit)


class RunError(RuntimeError):
    """The run cannot start or continue; the message says why and what to do."""


def plan_of(variants: Sequence[Variant], settings: RunSettings) -> dict[str, Any]:
    """What a run measures: every variant of the whole matrix (all shards), baseline, settings."""
    return {
        "variants": sorted(v.id for v in variants),
        "baseline": variants[0].id if variants else None,
        "settings": asdict(settings),
    }


def fingerprint(plan: dict[str, Any]) -> str:
    """A short hash of a plan_of() description."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]


def _listed(ids: Sequence[str], limit: int = 3) -> str:
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def plan_difference(stored: dict[str, Any], current: dict[str, Any]) -> str:
    """What differs between the plan in a file and this command's, in words."""
    parts = []
    old_settings, new_settings = stored.get("settings") or {}, current["settings"]
    for key in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(key) != new_settings.get(key):
            parts.append(
                f"{key} is {old_settings.get(key)!r} there, {new_settings.get(key)!r} here"
            )
    old_ids, new_ids = set(stored.get("variants") or []), set(current["variants"])
    if old_ids - new_ids:
        parts.append(f"variants only there: {_listed(sorted(old_ids - new_ids))}")
    if new_ids - old_ids:
        parts.append(f"variants only here: {_listed(sorted(new_ids - old_ids))}")
    if not parts and stored.get("baseline") != current["baseline"]:
        parts.append(f"baseline is {stored.get('baseline')} there, {current['baseline']} here")
    return "; ".join(parts) or "the plans differ"


def _has_content(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return any(chunk.strip() for chunk in iter(lambda: fh.read(65536), b""))
    except OSError as exc:
        raise RunError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def records_to_resume(
    out_path: Path, *, resume: bool, shard: str, plan: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The records a run continues from: none for a new, missing or empty file.

    Refuses (RunError) a file with records unless resuming, and when resuming, records of
    another shard or, where `plan` is given, of another matrix or settings (naming the
    difference). An incomplete last line (a writer stopped mid-line) is cut off with a warning
    before anything is appended. Called before the data is loaded, and again by run_plan.
    """
    if out_path.is_dir():
        raise RunError(f"{out_path} is a directory; the results file must be a file")
    if not out_path.exists() or not _has_content(out_path):
        return []
    if not resume:
        raise RunError(
            f"{out_path} already holds records; pass --resume to continue it, "
            "or --out to write elsewhere"
        )
    existing = records.read_records_or_none(out_path)
    other = {r["run"].get("shard", "1/1") for r in existing} - {shard}
    if other:
        raise RunError(
            f"{out_path} holds records of shard {sorted(other)[0]}, not {shard}; "
            "resume each shard into its own --out"
        )
    if plan is not None and existing:
        _check_plan(out_path, existing, plan)
    if records.drop_incomplete_tail(out_path):
        warnings.warn(
            f"{out_path}: cut off the incomplete last line before appending",
            records.RecordWarning,
            stacklevel=2,
        )
    return existing


def _check_plan(out_path: Path, existing: list[dict[str, Any]], plan: dict[str, Any]) -> None:
    stamps = {r["run"].get("fingerprint") for r in existing}
    if stamps == {None}:
        warnings.warn(
            f"{out_path}: its records do not say which matrix they belong to (written before "
            "runs recorded it); cannot check that this command continues the same one",
            records.RecordWarning,
            stacklevel=1,  # one place, so it shows once though the check runs twice
        )
        return
    if stamps == {fingerprint(plan)}:
        return
    stored: dict[str, Any] = next(
        (r["run"]["plan"] for r in records.probe_records(existing) if r["run"].get("plan")), {}
    )
    raise RunError(
        f"{out_path} belongs to a run of another matrix or settings ({plan_difference(stored, plan)}); "
        "resume it with the command that started it, or give a new --out"
    )


# When the machine is probed: its peak is the best trial, and the trials' spread shows load.
PROBE_PHASES = ("start", "between", "end")
PROBE_TIMEOUT_S = 600.0


def probe_machine(
    ctx: RunContext, measure_peak: bool = True, phase: str = "start"
) -> dict[str, Any]:
    """List the GPUs each backend sees and run matmul trials, in a child like every variant.

    A probe that crashes, is killed (the out-of-memory killer) or hangs gives a record that says
    so (``status`` failed or timeout, ``reason``), as a variant's job does: a probe only adds
    context, so losing it must not cost the rest of the run.
    """
    job = {"kind": "probe", "measure_peak": measure_peak, "phase": phase}
    result, _ = run_child(job, timeout_s=PROBE_TIMEOUT_S)
    if "probe" in result:
        probe = {**result["probe"], "status": "ok", "phase": phase}
    else:
        status = result.get("status")
        status = status if status in records.PROBE_FAILURES else "failed"
        probe = {"status": status, "reason": str(result.get("reason")), "phase": phase}
    return {**ctx.envelope("probe"), "probe": probe}


# Why a GPU job did not run when the start probe, which lists the GPUs, failed: a fault to retry
# (status failed), not a fact about the machine (skipped).
GPUS_UNKNOWN = (
    "not run: the start machine probe failed, so which GPUs this machine has is unknown; "
    "`mnist-bench run --resume --retry-failed` probes again and runs it"
)


def not_run(variant: Variant, gpus: Mapping[str, Sequence[str]] | None) -> dict[str, str] | None:
    """A job's status and reason when it does not run here; None when it runs.

    ``gpus`` None: the start probe failed. CPU jobs still run; GPU jobs fail with GPUS_UNKNOWN.
    """
    if gpus is None and variant.device == "gpu":
        return {"status": "failed", "reason": GPUS_UNKNOWN}
    reason = skip_reason(variant, gpus or {})
    return {"status": "skipped", "reason": reason} if reason else None


def skip_reason(variant: Variant, gpus: Mapping[str, Sequence[str]]) -> str | None:
    """Why a variant cannot run on this machine, or None. The one place such checks live.

    ``gpus``: backend → the GPUs it sees (``records.gpus_seen``); a backend absent from it sees none.
    """
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
    seen = list(gpus.get(variant.backend, []))
    if variant.device == "gpu" and not seen:
        return f"no GPU visible to {_LISTED_BY[variant.backend]} on this machine"
    if variant.device == "gpu" and variant.replicas_in_sync > len(seen):
        return (
            f"{variant.strategy} over {variant.replicas} GPUs needs {variant.replicas}, "
            f"{variant.backend} sees {len(seen)} on this machine"
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


# How each backend was asked for its GPUs (bench.measure.gpus), quoted when it saw none.
_LISTED_BY = {
    "tensorflow": "TensorFlow (tf.config.list_physical_devices('GPU') is empty)",
    "jax": "JAX (jax.devices('gpu') has none)",
    "torch": "torch (torch.cuda.device_count() is 0)",
}


def _backend_skip_reason(variant: Variant) -> str | None:
    """Combinations of a non-TensorFlow backend this harness cannot run, and why."""
    name = variant.backend
    if variant.device == "gpu" and variant.strategy != "default":
        return f"{variant.strategy} over GPUs on the {name} backend has not been verified here"
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


def job_seed(variant: Variant, repeat: int) -> int:
    """Each repeat its own seed, so repeats sample initialisation noise; the control its own."""
    return variant.seed + repeat + (CONTROL_SEED_OFFSET if variant.control else 0)


def variant_record(
    ctx: RunContext,
    job: Job,
    result: dict[str, Any],
    elapsed_s: float,
    pairing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wrap a child's result in the record envelope; a successful one gets a summary for people."""
    record = {
        **ctx.envelope("variant"),
        "variant": job.variant.to_dict(),
        "variant_id": job.variant.id,
        "repeat": job.repeat,
        "seed": job_seed(job.variant, job.repeat),
        "settings": ctx.settings.record_section(),
        "job_s": elapsed_s,
        **({"pairing": pairing} if pairing else {}),
        **result,
    }
    if record["status"] == "ok":
        record["summary"] = stats.repeat_stats(record)
    return record


def job_description(ctx: RunContext, job: Job) -> dict[str, Any]:
    """What a worker process is told to run for one job (its variant seeded by ``job_seed``)."""
    variant = {**job.variant.to_dict(), "seed": job_seed(job.variant, job.repeat)}
    return {
        "kind": "variant",
        "variant": variant,
        "repeat": job.repeat,
        "settings": ctx.settings.record_section(),
        "data_path": ctx.data_path,
        "hook": ctx.hook,
    }


def jobs_for(variants: Sequence[Variant], repeats: int) -> list[Job]:
    """Repeats interleaved (all variants once, then again) so slow drift spreads over variants."""
    return [Job(v, r) for r in range(repeats) for v in variants]


def run_jobs(
    ctx: RunContext,
    jobs: Sequence[Job],
    out_path: Path,
    *,
    gpus: Mapping[str, Sequence[str]] | None,
    on_record: Callable[[dict[str, Any], int, int, float], None] | None = None,
    numbering: tuple[int, int, float] | None = None,
) -> int:
    """Run jobs in order, appending each record as it finishes; returns how many ran.

    ``numbering`` = (jobs before these, jobs in all, their start time) for progress lines when a
    plan runs its jobs in parts.
    """
    before, total, started = numbering or (0, len(jobs), time.perf_counter())
    for index, job in enumerate(jobs, start=before + 1):
        result = not_run(job.variant, gpus)
        if result:
            elapsed = 0.0
        else:
            child_job = job_description(ctx, job)
            if job.variant.strategy == "multi_worker":
                result, elapsed = run_workers(
                    child_job, job.variant.replicas, job.variant.device, ctx.settings.timeout_s
                )
            else:
                result, elapsed = run_child(child_job, ctx.settings.timeout_s)
        record = variant_record(ctx, job, result, elapsed)
        records.append_record(out_path, record)
        if on_record:
            on_record(record, index, total, time.perf_counter() - started)
    return len(jobs)


OnRecord = Callable[[dict[str, Any], int, int, float], None]
# What ``--retry-failed`` runs again: faults of the job's process, not results (diverged, skipped).
RETRIED = ("failed", "timeout")


def run_plan(
    ctx: RunContext,
    variants: Sequence[Variant],
    out_path: Path,
    *,
    resume: bool = False,
    retry_failed: bool = False,
    measure_peak: bool = True,
    on_record: OnRecord | None = None,
    on_probe: Callable[[dict[str, Any]], None] | None = None,
    on_set: Callable[[str], None] | None = None,
) -> list[Job]:
    """Run every (variant, repeat) not yet in out_path, probing the machine before, between and after.

    Paired (the default, ``settings.paired``): single-process arms run in paired sets
    (``bench.run.pairs``), the minimum `repeats` rounds of sets, then more while ``next_set`` asks;
    multi_worker arms, which are several processes each, run one job after another afterwards.
    Unpaired: one job after another. The first half of the rounds runs after the 'start' probe,
    the rest after 'between', and an 'end' probe closes the run; a resumed run skips the probes it
    has. Without peak trials (measure_peak=False) only the 'start' probe runs, for the GPU list.
    With `retry_failed` (only with `resume`), jobs whose latest attempt failed or timed out run
    again: a plain job alone, an arm of a paired set with its whole set (``done_jobs``).
    Returns the plain jobs it ran (skipped and multi_worker ones; all of them when unpaired).
    """
    if retry_failed and not resume:
        raise RunError("--retry-failed needs --resume: it reruns the failed jobs of a run's --out")
    existing = records_to_resume(out_path, resume=resume, shard=ctx.shard, plan=ctx.plan)
    plan = _PlanRun(ctx, out_path, existing, retry_failed, on_record, on_set)
    probes = _Probes(ctx, out_path, existing, measure_peak, on_probe)
    probes.run("start")
    start = probes.probed.get("start")
    gpus = records.gpus_seen(start) if start else None  # None: the start probe failed
    between = probes.between if ctx.settings.repeats > 1 else (lambda: None)
    if ctx.settings.paired:
        jobs = plan.paired(variants, gpus, between)
    else:
        jobs = plan.unpaired(variants, gpus, between)
    probes.run("end")
    return jobs


def done_jobs(
    existing: Sequence[dict[str, Any]], *, retry_failed: bool = False
) -> set[tuple[str, int]]:
    """(variant id, repeat) of every job a resumed run does not run again.

    A job is one (variant, repeat) of the file's run and shard (``records.job_key``); it is done
    once it has a record, unless `retry_failed` and its latest attempt failed or timed out.
    """
    return {
        (r["variant_id"], r["repeat"])
        for r in records.variant_records(existing)
        if not (retry_failed and r["status"] in RETRIED)
    }


class _Probes:
    """A run's machine probes by phase: those in the file, and the ones this run adds."""

    def __init__(
        self,
        ctx: RunContext,
        out_path: Path,
        existing: Sequence[dict[str, Any]],
        measure_peak: bool,
        on_probe: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.ctx, self.out_path = ctx, out_path
        self.measure_peak, self.on_probe = measure_peak, on_probe
        # A phase whose probe failed is probed again on --resume: it costs seconds.
        self.probed = {
            p["probe"].get("phase", "start"): p
            for p in records.probe_records(existing)
            if records.probe_ok(p)
        }

    def run(self, phase: str) -> None:
        """Probe the machine unless the file has this phase (without peak trials: 'start' only).

        A failed probe is recorded and the run goes on; after a failed start probe, which lists
        the GPUs, GPU jobs fail with ``GPUS_UNKNOWN`` (``not_run``) and CPU jobs run.
        """
        if phase in self.probed or not (phase == "start" or self.measure_peak):
            return
        probed = probe_machine(self.ctx, self.measure_peak, phase)
        records.append_record(self.out_path, probed)
        if self.on_probe:
            self.on_probe(probed)
        if records.probe_ok(probed):
            self.probed[phase] = probed

    def between(self) -> None:
        self.run("between")


@dataclass
class _PlanRun:
    """The steps of ``run_plan`` between its probes: which jobs run, in which order."""

    ctx: RunContext
    out_path: Path
    existing: Sequence[dict[str, Any]]
    retry_failed: bool
    on_record: OnRecord | None
    on_set: Callable[[str], None] | None

    def todo(self, variants: Sequence[Variant]) -> list[Job]:
        """Every repeat of `variants`, interleaved, less the jobs the file has done."""
        done = done_jobs(self.existing, retry_failed=self.retry_failed)
        jobs = jobs_for(variants, self.ctx.settings.repeats)
        return [j for j in jobs if (j.variant.id, j.repeat) not in done]

    def unpaired(
        self,
        variants: Sequence[Variant],
        gpus: Mapping[str, Sequence[str]] | None,
        between: Callable[[], None],
    ) -> list[Job]:
        """One job after another: the first half of the rounds, the 'between' probe, the rest."""
        jobs = self.todo(variants)
        half = -(-self.ctx.settings.repeats // 2)
        parts = [[j for j in jobs if j.repeat < half], [j for j in jobs if j.repeat >= half]]
        started, before = time.perf_counter(), 0
        for first, part in zip((True, False), parts, strict=True):
            if not first:
                between()
            numbering = (before, len(jobs), started)
            run_jobs(
                self.ctx, part, self.out_path, gpus=gpus, on_record=self.on_record,
                numbering=numbering,
            )  # fmt: skip
            before += len(part)
        return jobs

    def paired(
        self,
        variants: Sequence[Variant],
        gpus: Mapping[str, Sequence[str]] | None,
        between: Callable[[], None],
    ) -> list[Job]:
        """Skipped jobs first, then the paired sets, then the multi_worker jobs one by one."""
        skipped = [v for v in variants if not_run(v, gpus)]
        pairable = [v for v in variants if v not in skipped and runs_in_one_process(v)]
        separate = [v for v in variants if v not in skipped and not runs_in_one_process(v)]
        plain = self.todo([*skipped, *separate])
        run = functools.partial(
            run_jobs, self.ctx, out_path=self.out_path, gpus=gpus, on_record=self.on_record
        )
        run([j for j in plain if j.variant in skipped])
        sets = PairedRun(
            self.ctx, self.out_path, self.existing, pairable, self.on_record, self.on_set,
            retry_failed=self.retry_failed,
        )  # fmt: skip
        sets.run_minimum(between)
        sets.retry_extra_sets()
        sets.run_until_resolved()
        run([j for j in plain if j.variant in separate])
        return plain


def check_pairing(variants: Sequence[Variant], settings: RunSettings) -> None:
    """PairingError now, before the data and the probe, if the paired sets cannot be formed."""
    if not settings.paired or not variants:
        return
    shared, others = pairs.split_arms(
        [v for v in variants if runs_in_one_process(v)], variants[0].id
    )
    cap = pairs.worker_cap(settings)
    pairs.check_cap(group_arms(shared, others, cap), cap)


class PairedRun:
    """The paired sets of one run: its groups, the sets already in the file, and the next ones."""

    def __init__(
        self,
        ctx: RunContext,
        out_path: Path,
        existing: Sequence[dict[str, Any]],
        pairable: Sequence[Variant],
        on_record: OnRecord | None,
        on_set: Callable[[str], None] | None,
        *,
        retry_failed: bool = False,
    ) -> None:
        self.ctx, self.out_path = ctx, out_path
        self.on_record, self.on_set = on_record, on_set
        self.retry_failed = retry_failed
        baseline = ctx.baseline_id or (pairable[0].id if pairable else None)
        shared, others = pairs.split_arms(pairable, baseline)
        self.baseline = baseline
        cap = pairs.worker_cap(ctx.settings)
        self.groups = recover_groups(existing, shared, others, cap)
        pairs.check_cap(self.groups, cap)
        # Each arm's latest attempt: a set run again replaces all of its arms' records.
        self.records = [r for r in records.variant_records(existing) if r.get("pairing")]
        self.started = time.perf_counter()
        # For progress lines: the minimum sets' records still to make (more sets may follow).
        done = self._done()
        self.planned = sum(
            len(group)
            for r in range(ctx.settings.repeats)
            for g, group in enumerate(self.groups)
            if set_id(g, r, ctx.shard) not in done
        )
        self.made = 0

    def _done(self) -> set[str]:
        """Sets in the file with a record of every one of their arms (a set is written whole);
        retrying failed jobs, less those with an arm whose latest attempt failed or timed out."""
        arms: dict[str, set[str]] = {}
        for r in self.records:
            arms.setdefault(r["pairing"]["set"], set()).add(r["variant_id"])
        broken = {r["pairing"]["set"] for r in self.records if r["status"] in RETRIED}
        return {
            s
            for s, got in arms.items()
            if got >= set(self._arms_of(s)) and not (self.retry_failed and s in broken)
        }

    def _arms_of(self, set_id: str) -> list[str]:
        return next(r["pairing"]["arms"] for r in self.records if r["pairing"]["set"] == set_id)

    def run_minimum(self, between: Callable[[], None]) -> None:
        """Rounds 0 .. repeats-1 of every group (round-major, so drift spreads over groups)."""
        half = -(-self.ctx.settings.repeats // 2)
        for r in range(self.ctx.settings.repeats):
            if r == half:
                between()
            for g, group in enumerate(self.groups):
                self.measure(g, r, group)

    def retry_extra_sets(self) -> None:
        """Retrying failed jobs: each set beyond the minimum (the stopping rule's) with a failed or
        timed-out arm runs again whole, with the same arms (``run_minimum`` reran the others)."""
        if not self.retry_failed:
            return
        by_id = {v.id: v for group in self.groups for v in group}
        broken = sorted(
            {
                (r["pairing"]["group"], r["pairing"]["round"], tuple(r["pairing"]["arms"]))
                for r in self.records
                if r["pairing"]["round"] >= self.ctx.settings.repeats and r["status"] in RETRIED
            }
        )
        for g, round_index, arms in broken:
            if not set(arms) <= set(by_id):
                raise RunError(
                    f"{self.out_path}: set {set_id(g, round_index, self.ctx.shard)} there holds "
                    "arms this run does not have; resume it with the command that started it"
                )
            self.measure(g, round_index, [by_id[a] for a in arms])

    def run_until_resolved(self) -> None:
        """More sets while ``pairs.next_set`` asks for one (the target and budget settings)."""
        while True:
            by_variant: dict[str, list[dict[str, Any]]] = {}
            for rec in self.records:
                by_variant.setdefault(rec["variant_id"], []).append(rec)
            arms = {
                vid: stats.arm(vid, ok)
                for vid, recs in by_variant.items()
                if (ok := [r for r in recs if r["status"] == "ok"])
            }
            live = {vid for vid, recs in by_variant.items() if recs[-1]["status"] == "ok"}
            seconds = {r["pairing"]["set"]: r["pairing"]["set_s"] for r in self.records}
            choice = pairs.next_set(
                self.groups, arms, live, self.ctx.settings, sum(seconds.values()),
                list(seconds.values()), self.baseline,
            )  # fmt: skip
            if choice is None:
                return
            g, chosen = choice
            rounds = [r["pairing"]["round"] for r in self.records if r["pairing"]["group"] == g]
            self.measure(g, max(rounds, default=-1) + 1, chosen)

    def measure(self, g: int, r: int, variants: Sequence[Variant]) -> None:
        """Run set (g, r) of `variants` unless the file has it; append its records together."""
        pset = pairs.make_set(
            g, r, variants, baseline_id=self.baseline, groups=len(self.groups), shard=self.ctx.shard
        )
        if pset.id in self._done():
            if self._arms_of(pset.id) != [a.variant.id for a in pset.arms]:
                raise RunError(
                    f"{self.out_path}: set {pset.id} there holds other arms than this run's "
                    "(another matrix); resume it with the command that started it, or a new --out"
                )
            return
        outcomes, set_s, rounds = pairs.run_set(pset, self._job_of, self.ctx.settings)
        made, settings = [], self.ctx.settings
        for arm in pset.arms:
            outcome = outcomes[arm.variant.id]
            section = pairs.pairing_section(
                pset, arm, outcome, set_s, rounds, settings.block_s, settings.repeats
            )
            job = Job(arm.variant, arm.repeat)
            made.append(variant_record(self.ctx, job, outcome.result, outcome.turns_s, section))
        records.append_records(self.out_path, made)
        self.records = records.latest_attempts([*self.records, *made])
        self.made += len(made)
        if self.on_set:
            self.on_set(f"set {pset.id}: {len(pset.arms)} arms, {rounds} rounds, {set_s:.0f} s")
        if self.on_record:
            planned = max(self.planned, self.made)
            for k, rec in enumerate(made, start=self.made - len(made) + 1):
                self.on_record(rec, k, planned, time.perf_counter() - self.started)

    def _job_of(self, arm: pairs.Arm) -> dict[str, Any]:
        return job_description(self.ctx, Job(arm.variant, arm.repeat))


def recover_groups(
    existing: Sequence[dict[str, Any]],
    shared: Sequence[Variant],
    others: Sequence[Variant],
    cap: int,
) -> list[tuple[Variant, ...]]:
    """A resumed run's groups as its first sets recorded them; the rest grouped anew.

    Each group's round-0 set holds the whole group, and round 0 runs group after group, so the
    recorded groups are 0 .. k-1. Arms in none of them (and every arm of a new run) are grouped by
    ``group_arms`` under today's cap.
    """
    by_id = {v.id: v for v in [*shared, *others]}
    recorded: dict[int, list[str]] = {}
    for rec in records.variant_records(existing, all_attempts=True):
        p = rec.get("pairing")
        if p and p["round"] == 0:
            recorded.setdefault(p["group"], p["arms"])
    groups = [tuple(by_id[vid] for vid in recorded[g] if vid in by_id) for g in sorted(recorded)]
    placed = {v.id for group in groups for v in group}
    rest = [v for v in others if v.id not in placed]
    if rest or not groups:
        groups += group_arms(shared, rest, cap)
    return groups
