"""Contention: whether a paired set's arms had the machine to themselves on their turns.

Each arm of a paired set records, per block of training, its wall, process CPU and machine steal
seconds (``timing.blocks``; records before schema 4 have none, and nothing here speaks of them).
A set is contended when the hypervisor took more than ``STEAL_SHARE_MAX`` of its blocks' wall
time, or when an arm on the CPU got less than ``CPU_PER_WALL_MIN`` CPU seconds per wall second in
its median block: either way something outside the set ran during its turns, and its ratios may
carry that instead of the arms' own costs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import stats

# Steal seconds of all the machine's CPUs together per wall second of the set's blocks. Steal that
# fell on one arm's blocks moves its ratio by up to that share: 2% is two thirds of the default
# ±3% target half-width, and above what a quiet 2-core VM showed (docs/method.md, "Contention").
STEAL_SHARE_MAX = 0.02
# An arm alone on its turn keeps at least one thread busy (its ops run while its Python thread
# waits for them), so its median block shows CPU ÷ wall near 1 or above; below 0.8 it went without
# a core for a fifth of its turn. An arm whose threads lost one core of several can stay above it:
# steal and the machine probe's spread are the other signs. GPU arms are left out: they wait for
# their device by design.
CPU_PER_WALL_MIN = 0.8


@dataclass(frozen=True)
class SetUsage:
    """One paired set's blocks: their wall and steal seconds, and its least-fed CPU arm."""

    set_id: str
    blocks: int
    wall_s: float
    steal_s: float | None  # None: some block could not read steal (no /proc/stat)
    cpu_per_wall: float | None  # the lowest CPU arm's median block CPU ÷ wall; None: no CPU arm
    lowest_arm: str | None

    @property
    def steal_share(self) -> float | None:
        return None if self.steal_s is None or not self.wall_s else self.steal_s / self.wall_s

    @property
    def reasons(self) -> list[str]:
        """Why this set counts as contended ([] when it does not)."""
        out = []
        if self.steal_share is not None and self.steal_share > STEAL_SHARE_MAX:
            out.append(f"steal {100 * self.steal_share:.1f}% of its blocks' wall")
        if self.cpu_per_wall is not None and self.cpu_per_wall < CPU_PER_WALL_MIN:
            out.append(f"`{self.lowest_arm}` CPU ÷ wall {self.cpu_per_wall:.2f}")
        return out


def set_usage(variant_records: Iterable[dict[str, Any]]) -> list[SetUsage]:
    """Every paired set whose arms recorded their blocks, in the order the records first name it.

    Sets are keyed by run too, as ``stats.arm`` keys them: two merged runs share set names, never a
    machine moment. The run's id prefixes a set's name only when the records hold several runs.
    """
    by_set: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for rec in variant_records:
        blocks = rec.get("timing", {}).get("blocks") if rec["status"] == "ok" else None
        if rec.get("pairing") and blocks:
            by_set[(rec["run"]["id"], rec["pairing"]["set"])].append(rec)
    several_runs = len({run for run, _ in by_set}) > 1
    return [
        _usage(f"{run}/{name}" if several_runs else name, recs)
        for (run, name), recs in by_set.items()
    ]


def _usage(set_id: str, recs: list[dict[str, Any]]) -> SetUsage:
    blocks = [b for r in recs for b in r["timing"]["blocks"]]
    steals = [b["steal_s"] for b in blocks]
    fed = {}
    for r in recs:
        ratios = [
            b["cpu_s"] / b["wall_s"]
            for b in r["timing"]["blocks"]
            if b["cpu_s"] is not None and b["wall_s"] > 0
        ]
        if r["variant"]["device"] == "cpu" and ratios:
            fed[r["variant_id"]] = stats.median(ratios)
    lowest = min(fed, key=fed.__getitem__) if fed else None
    return SetUsage(
        set_id,
        len(blocks),
        sum(b["wall_s"] for b in blocks),
        None if None in steals else sum(steals),
        fed[lowest] if lowest else None,
        lowest,
    )


def contention_line(usages: Sequence[SetUsage]) -> list[str]:
    """The method bullet: what the sets' blocks showed and the rule; none without block records."""
    if not usages:
        return []
    shares = [u.steal_share for u in usages if u.steal_share is not None]
    steal = (
        f"steal was at most {100 * max(shares):.1f}% of a set's blocks' wall"
        if shares
        else "steal could not be read (no /proc/stat)"
    )
    fed = [u.cpu_per_wall for u in usages if u.cpu_per_wall is not None]
    cpu = f"; the least-fed CPU arm's median block CPU ÷ wall was {min(fed):.2f}" if fed else ""
    flagged = sum(1 for u in usages if u.reasons)
    return [
        "- **Contention:** every block records the arm's process CPU seconds and the machine's "
        f"steal seconds; over {len(usages)} set(s), {steal}{cpu}. A set counts as contended when "
        f"steal passes {100 * STEAL_SHARE_MAX:g}% of its blocks' wall or a CPU arm's median block "
        f"CPU ÷ wall falls below {CPU_PER_WALL_MIN:g}: {flagged} here."
    ]


def contention_findings(usages: Sequence[SetUsage]) -> list[str]:
    """A warning naming each contended set and why; none when no set is."""
    flagged = [u for u in usages if u.reasons]
    if not flagged:
        return []
    named = "; ".join(f"`{u.set_id}` ({', '.join(u.reasons)})" for u in flagged)
    return [
        f"Warning: {len(flagged)} of {len(usages)} paired set(s) shared the machine with something "
        f"else during their turns: {named}. Their ratios may carry that; rerun on a quiet machine "
        "if they decide a verdict."
    ]
