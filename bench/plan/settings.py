"""Run-level settings: how every variant of a run is measured, recorded with each result."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.stats import DEFAULT_TARGET_HALFWIDTH

# Steps of epoch 1 left out of the step statistics (tracing, allocator and cache warm-up).
DEFAULT_WARMUP_STEPS = 10
DEFAULT_TARGET_ACCURACY = 0.97  # AlgoPerf's MNIST validation target
# Seconds of training per turn in a paired set (docs/method.md#paired-sets, which gives the steps
# a block held in reports/reference and the command that counts them); the block-length bias is
# measured in reports/interleave-bias.
DEFAULT_BLOCK_S = 0.1


@dataclass(frozen=True)
class RunSettings:
    """Run-level settings, recorded with every result."""

    repeats: int = 1
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    target_accuracy: float = DEFAULT_TARGET_ACCURACY
    timeout_s: float = 1800.0
    # Measure the baseline twice, as two arms with their own seeds, and report their difference as
    # this run's noise floor (bench.stats.noise_floor).
    aa_control: bool = False
    # Single-process arms run side by side in paired sets, taking turns in blocks of `block_s`
    # seconds (bench.run.pairs).
    block_s: float = DEFAULT_BLOCK_S
    # Workers alive at once (a set's arms); 0: as many as the machine's free memory holds.
    max_workers: int = 0
    # After `repeats` sets, more sets for the arms whose step ratio's interval is wider than
    # ±target_halfwidth, while the measuring time stays within budget_s (0: no more sets).
    target_halfwidth: float = DEFAULT_TARGET_HALFWIDTH
    budget_s: float = 0.0
    # Validation accuracies to time beyond target_accuracy (a time-to-target run, e.g. 0.98):
    # every variant must then validate every epoch, or there would be nothing to time.
    targets: tuple[float, ...] = ()

    def as_data(self) -> dict[str, Any]:
        """Every setting as JSON gives it back; no `targets` key when there are none, so runs
        without them keep the plan (and fingerprint) they had before the setting existed."""
        data = {**asdict(self), "targets": list(self.targets)}
        return data if self.targets else {k: v for k, v in data.items() if k != "targets"}

    def record_section(self) -> dict[str, Any]:
        """The 'settings' section of each record: how its one job was measured."""
        return {k: v for k, v in self.as_data().items() if k != "repeats"}
