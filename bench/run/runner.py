"""Runs a plan of variants, each repeat in its own child process, appending one record per job.

Single-process arms run side by side in paired sets (``bench.run.pairs``); multi_worker arms,
several processes each, cannot take turns and run one job after another. Resuming is
``bench.run.resume``; why a job does not run here is ``bench.run.skips``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import envinfo, records, stats
from bench.plan.grouping import runs_in_one_process, set_id
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.run import pairs
from bench.run.child import REPO_ROOT, run_child
from bench.run.cluster import run_workers
from bench.run.resume import (
    RETRIED,
    RunError,
    done_jobs,
    fingerprint,
    records_to_resume,
    recover_groups,
)
from bench.run.skips import not_run

OnRecord = Callable[[dict[str, Any], int, int, float], None]

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


PROBE_TIMEOUT_S = 600.0


def probe_machine(
    ctx: RunContext, measure_peak: bool = True, phase: str = "start"
) -> dict[str, Any]:
    """List the GPUs each backend sees and run matmul trials, in a child like every variant.

    A probe that crashes or hangs gives a record saying so, and the run goes on: it only adds context.
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
    on_record: OnRecord | None = None,
) -> None:
    """Run plain jobs (skipped, multi_worker) in order, appending each record as it finishes."""
    started = time.perf_counter()
    for index, job in enumerate(jobs, start=1):
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
            on_record(record, index, len(jobs), time.perf_counter() - started)


def run_plan(
    ctx: RunContext,
    variants: Sequence[Variant],
    out_path: Path,
    *,
    resume: bool = False,
    retry_failed: bool = False,
    measure_peak: bool = True,
    on_ready: Callable[[], None] | None = None,
    on_record: OnRecord | None = None,
    on_probe: Callable[[dict[str, Any]], None] | None = None,
    on_set: Callable[[str], None] | None = None,
) -> list[Job]:
    """Run every (variant, repeat) not yet in out_path, probing the machine before, between and after.

    The file and the paired sets are checked once, here, before `on_ready` and any probe. Paired
    sets run first (``PairedRun``), multi_worker jobs one after another afterwards; `retry_failed`
    reruns failed jobs (a paired arm with its whole set). Returns the plain jobs it ran.
    """
    existing = records_to_resume(out_path, resume=resume, shard=ctx.shard, plan=ctx.plan)
    pairs.check_pairing(variants, ctx.settings)
    if on_ready:
        on_ready()
    probes = _Probes(ctx, out_path, existing, measure_peak, on_probe)
    probes.run("start")
    start = probes.probed.get("start")
    gpus = records.gpus_seen(start) if start else None  # None: the start probe failed
    skipped = [v for v in variants if not_run(v, gpus)]
    pairable = [v for v in variants if v not in skipped and runs_in_one_process(v)]
    separate = [v for v in variants if v not in skipped and not runs_in_one_process(v)]
    done = done_jobs(existing, retry_failed=retry_failed)
    plain = [
        j
        for j in jobs_for([*skipped, *separate], ctx.settings.repeats)
        if (j.variant.id, j.repeat) not in done
    ]
    run = functools.partial(run_jobs, ctx, out_path=out_path, gpus=gpus, on_record=on_record)
    run([j for j in plain if j.variant in skipped])
    sets = PairedRun(
        ctx, out_path, existing, pairable, on_record, on_set, retry_failed=retry_failed
    )
    between = functools.partial(probes.run, "between")
    sets.run_minimum(between if ctx.settings.repeats > 1 else (lambda: None))
    sets.retry_extra_sets()
    sets.run_until_resolved()
    run([j for j in plain if j.variant in separate])
    probes.run("end")
    return plain


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
        """Probe the machine unless the file has this phase (without peak trials: 'start' only);
        a failed probe is recorded and the run goes on (GPU jobs then fail, ``not_run``)."""
        if phase in self.probed or not (phase == "start" or self.measure_peak):
            return
        probed = probe_machine(self.ctx, self.measure_peak, phase)
        records.append_record(self.out_path, probed)
        if self.on_probe:
            self.on_probe(probed)
        if records.probe_ok(probed):
            self.probed[phase] = probed


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
            for repeat in range(ctx.settings.repeats)
            for g, group in enumerate(self.groups)
            if set_id(g, repeat, ctx.shard) not in done
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
        """Sets 0 .. repeats-1 of every group (repeat-major, so drift spreads over groups)."""
        half = -(-self.ctx.settings.repeats // 2)
        for repeat in range(self.ctx.settings.repeats):
            if repeat == half:
                between()
            for g, group in enumerate(self.groups):
                self.measure(g, repeat, group)

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
        for g, repeat, arms in broken:
            if not set(arms) <= set(by_id):
                raise RunError(
                    f"{self.out_path}: set {set_id(g, repeat, self.ctx.shard)} there holds "
                    "arms this run does not have; resume it with the command that started it"
                )
            self.measure(g, repeat, [by_id[a] for a in arms])

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
            seconds: dict[str, float] = {}
            for r in self.records:  # a set's seconds: its last arm's (each arm's run to its end)
                key = r["pairing"]["set"]
                seconds[key] = max(seconds.get(key, 0.0), r["pairing"]["set_s"])
            choice = pairs.next_set(
                self.groups, arms, live, self.ctx.settings, sum(seconds.values()),
                list(seconds.values()), self.baseline,
            )  # fmt: skip
            if choice is None:
                return
            g, chosen = choice
            # The records' "round" is the set's repeat number in its group.
            repeats = [r["pairing"]["round"] for r in self.records if r["pairing"]["group"] == g]
            self.measure(g, max(repeats, default=-1) + 1, chosen)

    def measure(self, g: int, repeat: int, variants: Sequence[Variant]) -> None:
        """Run repeat `repeat` of group g's set of `variants` unless the file has it, appending
        each arm's record as that arm ends; of a set interrupted before, only the arms without a
        record run, as its next sitting."""
        pset = pairs.make_set(
            g,
            repeat,
            variants,
            baseline_id=self.baseline,
            groups=len(self.groups),
            shard=self.ctx.shard,
        )
        if pset.id in self._done():
            if self._arms_of(pset.id) != [a.variant.id for a in pset.arms]:
                raise RunError(
                    f"{self.out_path}: set {pset.id} there holds other arms than this run's "
                    "(another matrix); resume it with the command that started it, or a new --out"
                )
            return
        pset = self._unfinished(pset)
        made: list[dict[str, Any]] = []
        settings = self.ctx.settings
        arm_of = {a.variant.id: a for a in pset.arms}

        def keep(vid: str, outcome: pairs.ArmOutcome, set_s: float, rounds: int) -> None:
            arm = arm_of[vid]
            section = pairs.pairing_section(
                pset, arm, outcome, set_s, rounds, settings.block_s, settings.repeats
            )
            job = Job(arm.variant, arm.repeat)
            rec = variant_record(self.ctx, job, outcome.result, outcome.turns_s, section)
            records.append_records(self.out_path, [rec])
            made.append(rec)

        _, set_s, rounds = pairs.run_set(pset, self._job_of, settings, on_arm=keep)
        self.records = records.latest_attempts([*self.records, *made])
        self.made += len(made)
        if self.on_set:
            self.on_set(f"set {pset.id}: {len(pset.arms)} arms, {rounds} rounds, {set_s:.0f} s")
        if self.on_record:
            planned = max(self.planned, self.made)
            for k, rec in enumerate(made, start=self.made - len(made) + 1):
                self.on_record(rec, k, planned, time.perf_counter() - self.started)

    def _unfinished(self, pset: pairs.PairedSet) -> pairs.PairedSet:
        """The set as it runs now: whole, or (interrupted before, some arms recorded and no retry
        of its faults asked for) its unrecorded arms alone, as the set's next sitting."""
        mine = [r for r in self.records if r["pairing"]["set"] == pset.id]
        if not mine or (self.retry_failed and any(r["status"] in RETRIED for r in mine)):
            return pset
        recorded = {r["variant_id"] for r in mine}
        return dataclasses.replace(
            pset,
            arms=tuple(a for a in pset.arms if a.variant.id not in recorded),
            sitting=1 + max(r["pairing"].get("sitting", 0) for r in mine),
            all_arms=tuple(a.variant.id for a in pset.arms),
        )

    def _job_of(self, arm: pairs.SetArm) -> dict[str, Any]:
        return job_description(self.ctx, Job(arm.variant, arm.repeat))
