"""Paired sets: a matrix's single-process arms side by side, taking turns in blocks. No TensorFlow.

A set is one fresh process per arm (the baseline, its A/A control and the others of one group,
``bench.plan.grouping``). All of them start together and import, load and build side by side; once
every one is ready, they take turns through the engine (``bench.run.turns``): every round gives
every live arm one block of about ``block_s`` seconds of training, in a freshly shuffled order, one
arm training at a time. Each arm still runs its whole ``model.fit`` (epochs, validation) and its
final ``evaluate`` as a user would; interleaving only decides *when* its next steps run. An arm
that has finished leaves the rounds (its evaluate ran in its own turn); the others go on.

Each arm's record is appended as soon as that arm ends, so an interrupted set keeps its finished
arms; ``--resume`` runs the rest of it as a later *sitting* of the same set, whose arms pair only
with each other (``stats.set_key``). The stopping rule for sets beyond the minimum is
``next_set``: fixed before the run by its settings, stated in the report.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import envinfo, stats
from bench.plan.grouping import PairingError, group_arms, runs_in_one_process, set_id, shared_repeat
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant
from bench.run import turns
from bench.run.child import child_env, exit_reason, job_dir, peak_rss_bytes, worker_command

# Each TensorFlow worker held ~1.4 GiB RSS on the 2-core dev machine (peak RSS of the reference
# run's jobs); the cap leaves the rest of the machine this much.
WORKER_RSS_BYTES = int(1.5 * 2**30)
MEMORY_RESERVE_BYTES = 2 * 2**30
FALLBACK_WORKERS = 4  # where free memory cannot be read
# Processes of a set share the accelerator: none may take all its memory up front (TensorFlow's
# and JAX's default), or the second one to start could not allocate anything.
SHARED_DEVICE_ENV = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


@dataclass(frozen=True)
class SetArm:
    """One arm of a set: the variant, its repeat number (and so its seed) and its role."""

    variant: Variant
    repeat: int
    role: str  # "baseline", "control" or "arm"


@dataclass(frozen=True)
class PairedSet:
    """One set: which group, its repeat number in that group, and its arms (shared ones first)."""

    id: str
    group: int
    repeat: int
    arms: tuple[SetArm, ...]
    # 0, or the how-many-th resumed run of this set's unfinished arms (`arms` holds those alone;
    # `all_arms` the set's every arm, as its records name them).
    sitting: int = 0
    all_arms: tuple[str, ...] = ()


def worker_cap(settings: RunSettings, available_bytes: int | None = None) -> int:
    """Workers a set may hold at once: the setting, else what free memory allows (at least 2)."""
    if settings.max_workers:
        return settings.max_workers
    free = envinfo.available_memory_bytes() if available_bytes is None else available_bytes
    if free is None:
        return FALLBACK_WORKERS
    return max(2, (free - MEMORY_RESERVE_BYTES) // WORKER_RSS_BYTES)


def role_of(variant: Variant, baseline_id: str | None) -> str:
    """'baseline', 'control' (both shared by every group) or 'arm'."""
    if variant.control:
        return "control"
    return "baseline" if variant.id == baseline_id else "arm"


def split_arms(
    pairable: Sequence[Variant], baseline_id: str | None
) -> tuple[list[Variant], list[Variant]]:
    """(shared arms, baseline first then the control; the other arms), in matrix order."""
    shared = [v for v in pairable if role_of(v, baseline_id) != "arm"]
    shared.sort(key=lambda v: v.control)  # every group's and set's arms list the baseline first
    return shared, [v for v in pairable if v not in shared]


def make_set(
    group: int,
    repeat: int,
    variants: Sequence[Variant],
    *,
    baseline_id: str | None,
    groups: int,
    shard: str = "1/1",
) -> PairedSet:
    """The set of `variants` (a group, or a subset of it) for one repeat of that group."""
    arms = []
    for v in variants:
        role = role_of(v, baseline_id)
        # A shared arm is in every group's sets: a repeat number (and seed) of its own in each.
        own = repeat if role == "arm" else shared_repeat(repeat, group, groups)
        arms.append(SetArm(v, own, role))
    return PairedSet(set_id(group, repeat, shard), group, repeat, tuple(arms))


@dataclass
class ArmOutcome:
    """What one arm's process left: its result (as a plain job's) and its own seconds."""

    result: dict[str, Any]
    startup_s: float  # start to ready (imports, data, model), side by side with the others
    turns_s: float  # its turns: training, validation, evaluate
    turns: list[int]  # the arm's position in each round it took part in


def run_set(
    pset: PairedSet,
    job_of: Callable[[SetArm], dict[str, Any]],
    settings: RunSettings,
    *,
    block_of: Callable[[int, str], float | None] | None = None,
    on_arm: Callable[[str, ArmOutcome, float, int], None] | None = None,
) -> tuple[dict[str, ArmOutcome], float, int]:
    """Run one set to its end: ({variant id: outcome}, the set's wall seconds, its rounds).

    `job_of` gives each arm's worker job (as for a plain child); `block_of(round, variant id)` may
    give a turn another block length than ``block_s`` (the block-length bias check uses it). An arm
    that crashes or hangs past ``timeout_s`` of its own time becomes a failed or timeout result;
    the others go on. `on_arm(variant id, outcome, seconds so far, rounds so far)` hears of each
    arm as it ends, so its record can be written before the others end.
    """
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        takers: dict[str, turns.TurnTaker] = {}
        results: dict[str, Any] = {}
        for arm in pset.arms:
            tmp = stack.enter_context(job_dir())
            job = {**job_of(arm), "interleave": {"block_s": settings.block_s}}
            (tmp / "job.json").write_text(json.dumps(job))
            results[arm.variant.id] = tmp / "result.json"
            takers[arm.variant.id] = turns.TurnTaker(
                arm.variant.id,
                worker_command(tmp / "job.json", tmp / "result.json"),
                env={**child_env(), **SHARED_DEVICE_ENV},
                limit_s=settings.timeout_s,
            )
        for taker in takers.values():
            stack.callback(taker.kill)
        watch = _ArmWatch(takers, block_of)
        outcomes: dict[str, ArmOutcome] = {}

        def end(vid: str, rounds: list[list[str]]) -> None:
            t = takers[vid]
            outcomes[vid] = ArmOutcome(
                _result(results[vid], watch.ended(vid), settings.timeout_s),
                t.ready_s or 0.0,
                t.busy_s,
                [r.index(vid) for r in rounds if vid in r],
            )
            if on_arm is not None:
                on_arm(vid, outcomes[vid], time.perf_counter() - started, len(rounds))

        rounds = turns.take_turns(
            takers,
            turns.shuffled(
                stats.seed_for(f"{pset.id}#{pset.sitting}" if pset.sitting else pset.id)
            ),
            on_failure=watch.failed,
            block_of=watch.block_of,
            on_end=end,
        )
    return outcomes, time.perf_counter() - started, len(rounds)


@dataclass
class ArmEnd:
    """How an arm's process failed: the engine's error, its exit code, when, its last peak RSS."""

    error: turns.TurnError
    code: int | None = None
    elapsed_s: float | None = None  # from its start to the failure
    rss_bytes: int | None = None


class _ArmWatch:
    """A set's arms from the driver's side: each one's peak RSS, read before each of its turns,
    and how and when each that failed ended (for ``child.exit_reason``)."""

    def __init__(
        self,
        takers: Mapping[str, turns.TurnTaker],
        block_of: Callable[[int, str], float | None] | None,
    ) -> None:
        self.takers, self.inner = takers, block_of
        self.rss: dict[str, int] = {}
        self.ends: dict[str, ArmEnd] = {}

    def block_of(self, round_index: int, label: str) -> float | None:
        rss = peak_rss_bytes(self.takers[label].proc.pid)
        if rss:
            self.rss[label] = rss
        return self.inner(round_index, label) if self.inner else None

    def failed(self, exc: turns.TurnError) -> None:
        taker = self.takers[exc.label]
        elapsed = time.perf_counter() - taker.started
        self.ends[exc.label] = ArmEnd(exc, taker.returncode, elapsed, self.rss.get(exc.label))

    def ended(self, label: str) -> ArmEnd | None:
        return self.ends.get(label)


def _result(path: Any, end: ArmEnd | None, timeout_s: float) -> dict[str, Any]:
    if end is None and path.exists():
        return json.loads(path.read_text())
    if end is not None and end.error.timed_out:
        return {"status": "timeout", "reason": f"killed after the {timeout_s:g} s limit"}
    if end is None:
        return {"status": "failed", "reason": "the worker ended its turns without a result"}
    if end.error.killed_by_driver:
        return {"status": "failed", "reason": str(end.error)}
    reason = exit_reason(end.code, end.error.output, end.elapsed_s, end.rss_bytes)
    return {"status": "failed", "reason": reason}


def pairing_section(
    pset: PairedSet, arm: SetArm, outcome: ArmOutcome, set_s: float, rounds: int, block_s: float,
    minimum: int,
) -> dict[str, Any]:  # fmt: skip
    """The record's 'pairing' section: which set (and sitting), with whom, in which turns.
    `set_s` and `rounds` are the set's up to this arm's end (the last arm's are the whole set's)."""
    return {
        "set": pset.id,
        "group": pset.group,
        "round": pset.repeat,  # the record's name for the set's repeat number
        "extra": pset.repeat >= minimum,  # a set the stopping rule added after the minimum
        "role": arm.role,
        "arms": list(pset.all_arms) or [a.variant.id for a in pset.arms],
        **({"sitting": pset.sitting} if pset.sitting else {}),
        "block_s": block_s,
        "rounds": rounds,
        "turns": outcome.turns,
        "startup_s": round(outcome.startup_s, 3),
        "set_s": round(set_s, 3),
    }


# --- Sampling until the answer resolves --------------------------------------------------------


def widths(
    arms: Mapping[str, stats.Arm], baseline: str, candidates: Sequence[str]
) -> dict[str, float]:
    """Each candidate's step-ratio relative half-width against the baseline (inf: no interval)."""
    out = {}
    base = arms.get(baseline)
    for vid in candidates:
        c = stats.compare_arms(base, arms[vid]) if base is not None and vid in arms else None
        out[vid] = stats.relative_half_width(c.step_ratio) if c else float("inf")
    return out


def next_set(
    groups: Sequence[Sequence[Variant]],
    arms: Mapping[str, stats.Arm],
    live: set[str],
    settings: RunSettings,
    spent_s: float,
    set_seconds: Sequence[float],
    baseline: str | None,
) -> tuple[int, list[Variant]] | None:
    """The stopping rule, fixed by the settings before the run: (group, its arms) or None to stop.

    After the minimum sets, another set runs only while some arm's step ratio (against the
    baseline, the A/A control included) is wider than ±target_halfwidth, and only if it is expected
    to end within budget_s of measuring time (the median set so far, scaled by its arm count).
    It holds the baseline and the unresolved arms of the group whose widest ratio is widest.
    Arms whose last job did not end ok (`live` lacks them) are not rerun. The first arm of every
    group is the baseline; without a measured baseline there is nothing to resolve.
    """
    if settings.budget_s <= 0 or baseline is None or baseline not in arms:
        return None
    best: tuple[float, int, list[Variant]] | None = None
    for g, group in enumerate(groups):
        others = [v for v in group if v.id in live and v.id != baseline]
        wide = widths(arms, baseline, [v.id for v in others])
        todo = [v for v in others if wide[v.id] > settings.target_halfwidth]
        if todo and (best is None or max(wide[v.id] for v in todo) > best[0]):
            base = next(v for v in group if v.id == baseline)
            best = (max(wide[v.id] for v in todo), g, [base, *todo])
    if best is None:
        return None
    _, g, chosen = best
    full = statistics.median(set_seconds) if set_seconds else 0.0
    expected = full * len(chosen) / max(len(groups[g]), 1)
    if spent_s + expected > settings.budget_s:
        return None
    return g, chosen


def check_cap(groups: Sequence[Sequence[Variant]], cap: int) -> None:
    """PairingError when a group has more arms than may live at once (checked before any work)."""
    biggest = max((len(g) for g in groups), default=0)
    if biggest > cap:
        raise PairingError(f"a paired set of {biggest} arms exceeds the cap of {cap} workers")


def check_pairing(variants: Sequence[Variant], settings: RunSettings) -> None:
    """PairingError before any work if the matrix's paired sets cannot be formed under the cap."""
    if not variants:
        return
    shared, others = split_arms([v for v in variants if runs_in_one_process(v)], variants[0].id)
    cap = worker_cap(settings)
    check_cap(group_arms(shared, others, cap), cap)
