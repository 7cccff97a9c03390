"""Split a matrix over N machines (`run --shard I/N`) and merge their records back (`merge`).

Pure functions of variants and records; no TensorFlow. Every shard computes the same assignment on
its own, from the variants alone: ids sorted, whole variants (all their repeats, so a variant's
repeat spread is one machine's) dealt longest-expected-first to the least-loaded shard. The result
does not depend on the order of the TOML, the machine, or anything measured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import records
from bench.variant import Variant

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

# Expected-cost model in seconds of a 2-core CPU, rounded from the job times of the default (3 epochs)
# and distribute profiles on the project's dev machine: median error ~15%, enough to rank and balance
# jobs; it never predicts a figure. A job pays process start, TensorFlow import and the trace once,
# then per step a fixed cost plus one per image, then its validation and final evaluation passes.
JOB_START_S = 5.5
STEP_S = 0.0015
IMAGE_S = 0.000005
EVAL_IMAGE_S = 0.00003
# Measured step time relative to one device: splitting batches and all-reducing every step (and for
# multi_worker, doing it between processes over gRPC) costs more than the replicas add on a CPU.
STRATEGY_FACTOR = {"default": 1.0, "mirrored": 2.5, "multi_worker": 8.0}


class ShardError(ValueError):
    """A --shard spec or a merge is invalid; the message names the value or the files."""


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' → (2, 4); errors say what is wrong with the spec."""
    match = _SHARD.match(text)
    if not match:
        raise ShardError(f"--shard {text!r}: expected I/N (this is shard I of N), e.g. 1/4")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"--shard {text!r}: need 1 <= I <= N, got I={index}, N={count}")
    return index, count


def expected_cost_s(variant: Variant, repeats: int = 1) -> float:
    """Rough seconds all repeats of a variant take, from its settings alone (see the constants)."""
    factor = STRATEGY_FACTOR[variant.strategy]
    steps = variant.steps_per_epoch() * variant.epochs
    train = steps * STEP_S + variant.train_images() * variant.epochs * IMAGE_S
    eval_images = 10_000 * (1 + _validations(variant))  # the final evaluate, plus validation
    if variant.validation == "split":
        eval_images = 10_000 + int(60_000 * variant.validation_split) * variant.epochs
    return repeats * (JOB_START_S + factor * (train + eval_images * EVAL_IMAGE_S))


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


def plan_shards(variants: Sequence[Variant], count: int, repeats: int = 1) -> list[Shard]:
    """All `count` shards of a matrix; every variant lands in exactly one."""
    if count < 1:
        raise ShardError(f"shard count must be >= 1, got {count}")
    cost = {v.id: expected_cost_s(v, repeats) for v in variants}
    loads = [0.0] * count
    owner: dict[str, int] = {}
    for vid in sorted(cost, key=lambda i: (-cost[i], i)):  # longest first, ties by id
        target = min(range(count), key=lambda k: (loads[k], k))
        owner[vid] = target
        loads[target] += cost[vid]
    return [
        Shard(
            index=k + 1,
            count=count,
            variants=tuple(v for v in variants if owner[v.id] == k),
            expected_s=loads[k],
        )
        for k in range(count)
    ]


def select_shard(variants: Sequence[Variant], spec: str, repeats: int = 1) -> Shard:
    """The shard an 'I/N' spec names."""
    index, count = parse_shard(spec)
    return plan_shards(variants, count, repeats)[index - 1]


def _line_numbers(path: Path) -> list[int]:
    """Line number of each record read_records returns (it skips blank lines)."""
    text = path.read_text()
    return [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _schema_versions(path: Path) -> set[Any]:
    versions: set[Any] = set()
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return versions  # read_records reports it
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # read_records names the line
        if isinstance(record, dict):
            versions.add(record.get("schema_version"))
    return versions


def merge_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Records of every file, in file order; refuses mixed schema versions and duplicate jobs.

    Probe records are all kept (one per shard's machine). A (variant_id, repeat) seen twice means
    two shards ran the same job (overlapping specs, or a file given twice) and is refused rather
    than resolved, since either copy could be the one the user meant.
    """
    if not paths:
        raise ShardError("merge: give at least one records file")
    versions = {str(p): _schema_versions(Path(p)) for p in paths}
    if len(set().union(*versions.values())) > 1:
        listing = "; ".join(
            f"{p}: {', '.join(map(str, sorted(v, key=str)))}" for p, v in versions.items()
        )
        raise ShardError(
            f"merge: records of different schema versions ({listing}); re-run the shards with "
            "one mnist-bench version, or merge only files of the same version"
        )
    merged: list[dict[str, Any]] = []
    seen: dict[tuple[str, int], str] = {}
    for p in map(Path, paths):
        file_records = records.read_records(p)
        for record, line in zip(file_records, _line_numbers(p), strict=True):
            if record["kind"] == "variant":
                key = (record["variant_id"], record["repeat"])
                if key in seen:
                    raise ShardError(
                        f"merge: {key[0]} repeat {key[1]} is in both {seen[key]} and {p}:{line}; "
                        "each job must come from one shard (were the same shards, or the same "
                        "file, given twice?)"
                    )
                seen[key] = f"{p}:{line}"
            merged.append(record)
    return merged


def missing_shards(merged: Sequence[dict[str, Any]]) -> list[str]:
    """Shards of an I/N split that none of the merged records came from, e.g. ['3/4']."""
    specs = {r["run"].get("shard") for r in merged if r["run"].get("shard")}
    counts = {int(s.split("/")[1]) for s in specs}
    return sorted(
        (f"{i}/{n}" for n in counts for i in range(1, n + 1) if f"{i}/{n}" not in specs),
        key=lambda s: tuple(map(int, s.split("/"))),
    )


def merge_files(paths: Sequence[Path], out: Path) -> list[dict[str, Any]]:
    """Merge shard records into `out`, which must not exist yet (nothing recorded is overwritten)."""
    if out.exists():
        raise ShardError(f"merge: {out} already exists; choose another -o or move it away first")
    merged = merge_records(paths)
    out.parent.mkdir(parents=True, exist_ok=True)
    records.write_records(out, merged)
    return merged
