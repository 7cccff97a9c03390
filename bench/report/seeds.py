"""Whole training runs over seeds: per-epoch curves with bands, the best epoch, whether validation
loss turns up (overfitting), and what validating every epoch costs against validating once.

Each successful record is one seed's run; these figures use every one of them (the curves table
further down shows one repeat only). docs/method.md, "The walkthrough's run", gives the rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import stats

CURVES = ("accuracy", "loss", "val_accuracy", "val_loss")


@dataclass(frozen=True)
class SeedRun:
    """One record's whole run: its curves, per-epoch seconds and final evaluation."""

    variant_id: str
    set_id: str | None
    curves: dict[str, list[float | None]]
    train_s: list[float]
    val_s: list[float]
    final_eval_s: float
    test_accuracy: float
    steps_per_epoch: int
    stalled_s: float = 0.0  # the long steps' seconds: the machine's stalls (stats.LONG_STEP_FACTOR)

    @property
    def epochs(self) -> int:
        return len(self.train_s)

    def per_epoch_total_s(self) -> float:
        """Training (its stalls left out) plus every epoch's validation: what fit with
        validation_data costs."""
        return sum(self.train_s) - self.stalled_s + sum(self.val_s)

    def end_only_total_s(self) -> float:
        """Training (its stalls left out) plus one evaluate: the walkthrough's option #1."""
        return sum(self.train_s) - self.stalled_s + self.final_eval_s


def seed_runs(variants: Sequence[dict[str, Any]]) -> dict[str, list[SeedRun]]:
    """variant id → one SeedRun per successful record, in file order."""
    out: dict[str, list[SeedRun]] = {}
    for rec in variants:
        if rec["status"] != "ok":
            continue
        timing, acc = rec["timing"], rec["accuracy"]
        out.setdefault(rec["variant_id"], []).append(
            SeedRun(
                rec["variant_id"],
                stats.set_key(rec) if rec.get("pairing") else None,
                {k: list(acc[k]) for k in CURVES},
                list(timing["train_s_per_epoch"]),
                list(timing["val_s_per_epoch"]),
                timing["final_eval_s"],
                acc["test_accuracy"],
                timing["steps_per_epoch"],
                stats.repeat_stats(rec)["long_steps_s"],
            )
        )
    return out


def band(runs: Sequence[SeedRun], key: str) -> list[stats.Interval | None]:
    """Per epoch, the mean of `key` over seeds with its 95% t-interval (None where fewer than two
    seeds have a value, e.g. validation curves of an arm that validates once)."""
    epochs = min((r.epochs for r in runs), default=0)
    out = []
    for e in range(epochs):
        values = [v for r in runs if (v := r.curves[key][e]) is not None]
        out.append(stats.mean_interval(values))
    return out


def has_curves(runs: Sequence[SeedRun]) -> bool:
    """Whether `runs` give validation curves with bands: several epochs, validated every one."""
    return (
        len(runs) >= 2
        and runs[0].epochs >= 2
        and all(b is not None for b in band(runs, "val_loss"))
    )


@dataclass(frozen=True)
class Overfitting:
    """Where the mean validation loss is lowest, and how far above it epoch `last` ends."""

    best_epoch: int  # 1-based, on the mean curve
    best_epochs: list[int]  # each seed's own lowest epoch
    last: int
    rise: stats.Interval  # val_loss[last] − val_loss[best_epoch], mean over seeds
    final_accuracy: stats.Interval  # training accuracy at `last`

    @property
    def overfits(self) -> bool:
        """Validation loss ends above its best, beyond what the seeds' spread allows."""
        return self.rise.lo > 0


def overfitting(runs: Sequence[SeedRun]) -> Overfitting | None:
    """The overfitting finding: per seed, validation loss at the last epoch minus at the epoch where
    the mean curve is lowest (one epoch for all seeds, so the difference is not the per-seed
    minimum's upward bias); None without bands."""
    if not has_curves(runs):
        return None
    means = [b.point for b in band(runs, "val_loss") if b is not None]
    best = min(range(len(means)), key=means.__getitem__)
    last = len(means) - 1
    rises = [r.curves["val_loss"][last] - r.curves["val_loss"][best] for r in runs]  # type: ignore[operator]
    rise = stats.mean_interval(rises)
    final = band(runs, "accuracy")[last]
    if rise is None or final is None:
        return None
    own = [min(range(r.epochs), key=lambda e, r=r: r.curves["val_loss"][e]) + 1 for r in runs]  # type: ignore[arg-type,return-value]
    return Overfitting(best + 1, own, last + 1, rise, final)


def overfitting_line(o: Overfitting, label: str) -> str:
    """The finding in words, as the interval supports it."""
    seeds = len(o.best_epochs)
    where = ", ".join(f"{e}" for e in sorted(o.best_epochs))
    rise = f"{o.rise.point:+.3f} [{o.rise.lo:+.3f}, {o.rise.hi:+.3f}]"
    if o.best_epoch == o.last:
        return (
            f"{label}: validation loss is lowest at the last epoch ({o.last}) on the mean over "
            f"{seeds} seeds: still falling, no overfitting shown."
        )
    head = (
        f"{label}: validation loss is lowest at epoch {o.best_epoch} on the mean over {seeds} "
        f"seeds (each seed's own lowest: epochs {where}); at epoch {o.last} it is {rise} above "
        f"that, while training accuracy reaches {o.final_accuracy.point:.4f}"
    )
    if o.overfits:
        return (
            head
            + f": the run **overfits** after epoch {o.best_epoch} (the whole interval is above 0)."
        )
    return head + ": no overfitting shown (the interval reaches 0)."


def validation_cost(
    per_epoch: Sequence[SeedRun], end_only: Sequence[SeedRun]
) -> tuple[stats.Interval, int] | None:
    """Total time of per-epoch validation ÷ validating once, paired by set: (interval, sets).
    None without two sets holding both arms."""
    once = {r.set_id: r for r in end_only if r.set_id is not None}
    logs = [
        math.log(r.per_epoch_total_s() / once[r.set_id].end_only_total_s())
        for r in per_epoch
        if r.set_id in once
    ]
    return (stats.t_ratio_interval(logs), len(logs)) if len(logs) >= 2 else None


def validation_share(per_epoch: Sequence[SeedRun]) -> stats.Interval | None:
    """Validation's share of a per-epoch run's training plus validation seconds, over seeds."""
    return stats.mean_interval([sum(r.val_s) / r.per_epoch_total_s() for r in per_epoch])
