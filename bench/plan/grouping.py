"""Which arms run side by side: a matrix's single-process arms in groups of paired sets. Pure.

Every group carries the shared arms (the baseline and its A/A control) first, so every other arm
is paired with the baseline in its own sets; the others are dealt in matrix order into as few
groups as the worker cap allows, their sizes differing by at most one.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.plan.variant import Variant


class PairingError(ValueError):
    """The arms cannot be grouped under this cap; the message says what to change."""


def runs_in_one_process(variant: Variant) -> bool:
    """Whether a variant's job is one process (and can take turns): all but multi_worker."""
    return variant.strategy != "multi_worker"


def group_arms(
    shared: Sequence[Variant], others: Sequence[Variant], cap: int
) -> list[tuple[Variant, ...]]:
    """Groups of at most `cap` arms, each the shared arms followed by its share of the others."""
    room = cap - len(shared)
    if room < 1:
        raise PairingError(
            f"a paired set of at most {cap} workers cannot hold the {len(shared)} shared arm(s) "
            f"and one more; raise max_workers to {len(shared) + 1} or more "
            "(each worker holds ~1.5 GiB)"
        )
    if not others:
        return [tuple(shared)] if shared else []
    count = -(-len(others) // room)
    size, extra = divmod(len(others), count)
    groups, start = [], 0
    for g in range(count):
        end = start + size + (1 if g < extra else 0)
        groups.append((*shared, *others[start:end]))
        start = end
    return groups


def set_id(group: int, repeat: int, shard: str = "1/1") -> str:
    """'g0-r3', group 0's set of repeat 3 (with 's2of4-' in front on a shard): unique within a run,
    and across its shards."""
    prefix = "" if shard == "1/1" else "s{}of{}-".format(*shard.split("/"))
    return f"{prefix}g{group}-r{repeat}"


def shared_repeat(repeat: int, group: int, groups: int) -> int:
    """The repeat number of a shared arm (baseline, control) in group `group`'s set of `repeat`:
    unique per record, so each gets its own seed, and (variant, repeat) still names one record."""
    return repeat * groups + group
