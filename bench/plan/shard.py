"""Split a matrix over N machines (`run --shard I/N`); `bench.records` merges the records back.

Pure functions of variants; no TensorFlow. Every shard computes the same assignment on
its own, from the variants alone: ids sorted, whole variants (all their repeats, so a variant's
repeat spread is one machine's) dealt longest-expected-first to the least-loaded shard. The result
does not depend on the order of the TOML, the machine, or anything measured.

Ratios never pair across machines: every shard carries the matrix's shared arms, the baseline (the
first variant) and its A/A control, and measures them beside its own variants, so each shard's
ratios and noise floor are its own machine's (``bench.run.pairs``).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bench.plan.variant import Variant, shown
from mnist_models.spec import TEST_IMAGES, TRAIN_IMAGES

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*", re.ASCII)
# More shards than this is more than any matrix has variants (see bench.plan.matrix.MAX_VARIANTS);
# specs are bounded before they become numbers, so a huge one never allocates or loops.
MAX_SHARDS = 10_000

# Expected-cost model in seconds of a 2-core CPU, rounded from the dev machine's job times: enough to
# rank and balance jobs, never a figure a report shows. A job pays process start, TensorFlow import
# and the trace once, then per step a fixed cost plus one per image, then its evaluation passes.
JOB_START_S = 5.5
STEP_S = 0.0015
IMAGE_S = 0.000005
EVAL_IMAGE_S = 0.00003
# Measured step time relative to one device: splitting batches and all-reducing every step (and for
# multi_worker, doing it between processes over gRPC) costs more than the replicas add on a CPU.
STRATEGY_FACTOR = {"default": 1.0, "mirrored": 2.5, "multi_worker": 8.0}
# Other Keras backends relative to TensorFlow, keyed by (backend, compiled) as jit_compile resolves on
# a CPU: (factor on the per-step costs, factor on the per-image cost, extra seconds per job), rough,
# from one-epoch runs on the same machine type; torch.compile's extra is its compiling.
BACKEND_COST = {
    ("tensorflow", False): (1.0, 1.0, 0.0),
    ("tensorflow", True): (1.0, 1.0, 0.0),
    ("jax", True): (0.4, 0.85, 0.0),
    ("jax", False): (30.0, 1.0, 0.0),
    ("torch", False): (4.0, 1.0, 0.0),
    ("torch", True): (1.0, 1.0, 40.0),
}


class ShardError(ValueError):
    """A --shard spec or a merge is invalid; the message names the value or the files."""


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' → (2, 4); errors say what is wrong with the spec."""
    match = _SHARD.fullmatch(text)
    if not match:
        raise ShardError(f"--shard {shown(text)}: expected I/N (this is shard I of N), e.g. 1/4")
    digits = len(str(MAX_SHARDS))
    if any(len(g.lstrip("0")) > digits for g in match.groups()):
        raise ShardError(f"--shard {shown(text)}: N can be at most {MAX_SHARDS}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"--shard {shown(text)}: need 1 <= I <= N, got I={index}, N={count}")
    if count > MAX_SHARDS:
        raise ShardError(f"--shard {shown(text)}: N can be at most {MAX_SHARDS}")
    return index, count


def expected_cost_s(variant: Variant, repeats: int = 1) -> float:
    """Rough seconds all repeats of a variant take, from its settings alone (see the constants)."""
    return repeats * (JOB_START_S + backend_start_s(variant) + compute_s(variant))


def backend_start_s(variant: Variant) -> float:
    """Seconds a job spends before its steps run beyond JOB_START_S (torch.compile's compiling)."""
    return BACKEND_COST[(variant.backend, compiled_on_cpu(variant))][2]


def compute_s(variant: Variant) -> float:
    """Rough seconds of one job's training steps, validation and final evaluation (no start-up)."""
    factor = STRATEGY_FACTOR[variant.strategy]
    per_step, per_image, _ = BACKEND_COST[(variant.backend, compiled_on_cpu(variant))]
    steps = variant.steps_per_epoch() * variant.epochs
    train = (
        per_step * steps * STEP_S + per_image * variant.train_images() * variant.epochs * IMAGE_S
    )
    eval_images = TEST_IMAGES * (1 + _validations(variant))  # the final evaluate, plus validation
    if variant.validation == "split":
        eval_images = TEST_IMAGES + int(TRAIN_IMAGES * variant.validation_split) * variant.epochs
    evaluate = per_step * eval_images * EVAL_IMAGE_S
    return factor * (train + evaluate)


def compiled_on_cpu(variant: Variant) -> bool:
    """Whether Keras compiles the step on a CPU: "auto" means jax.jit on JAX only (see Variant)."""
    if variant.jit_compile == "auto":
        return variant.backend == "jax"
    return variant.jit_compile is True


def _validations(variant: Variant) -> int:
    if variant.validation == "per_epoch":
        return variant.epochs
    if variant.validation == "freq":
        return variant.epochs // variant.validation_freq
    return 0


@dataclass(frozen=True)
class Shard:
    """One slice of a matrix: its variants in matrix order and their expected cost."""

    index: int
    count: int
    variants: tuple[Variant, ...]
    expected_s: float

    @property
    def spec(self) -> str:
        """'I/N', as recorded in every record's run section."""
        return f"{self.index}/{self.count}"


def shared_arms(variants: Sequence[Variant]) -> list[Variant]:
    """The arms every shard carries: the baseline (first variant) and the A/A control."""
    return [v for k, v in enumerate(variants) if k == 0 or v.control]


def plan_shards(variants: Sequence[Variant], count: int, repeats: int = 1) -> list[Shard]:
    """All `count` shards of a matrix; every variant but the shared arms lands in exactly one,
    and with more than one shard every shard also carries the shared arms (``shared_arms``)."""
    if not 1 <= count <= MAX_SHARDS:
        raise ShardError(f"shard count must be in 1..{MAX_SHARDS}, got {count}")
    shared = {v.id for v in shared_arms(variants)} if count > 1 else set()
    shared_cost = sum(expected_cost_s(v, repeats) for v in variants if v.id in shared)
    dealt = [v for v in variants if v.id not in shared]
    cost = {v.id: expected_cost_s(v, repeats) for v in dealt}
    loads = [0.0] * count
    heap = [(0.0, k) for k in range(count)]  # (load, shard): least loaded first, ties by index
    owner: dict[str, int] = {}
    for vid in sorted(cost, key=lambda i: (-cost[i], i)):  # longest first, ties by id
        _, target = heapq.heappop(heap)
        owner[vid] = target
        loads[target] += cost[vid]
        heapq.heappush(heap, (loads[target], target))
    return [
        Shard(
            index=k + 1,
            count=count,
            variants=tuple(v for v in variants if v.id in shared or owner[v.id] == k),
            expected_s=loads[k] + shared_cost,
        )
        for k in range(count)
    ]


def select_shard(variants: Sequence[Variant], spec: str, repeats: int = 1) -> Shard:
    """The shard an 'I/N' spec names; N may not exceed the number of variants."""
    index, count = parse_shard(spec)
    most = max(1, len(variants) - len(shared_arms(variants)))
    if count > most:
        raise ShardError(
            f"--shard {spec}: the matrix has {len(variants)} variant(s), {most} besides the "
            f"baseline and its control that every shard carries, so N can be at most {most} "
            "(more shards would only be empty)"
        )
    return plan_shards(variants, count, repeats)[index - 1]
