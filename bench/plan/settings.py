"""Run-level settings: how every variant of a run is measured, recorded with each result."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Steps of epoch 1 left out of the step statistics (tracing, allocator and cache warm-up).
DEFAULT_WARMUP_STEPS = 10
DEFAULT_TARGET_ACCURACY = 0.97  # AlgoPerf's MNIST validation target


@dataclass(frozen=True)
class RunSettings:
    """Run-level settings, recorded with every result."""

    repeats: int = 1
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    target_accuracy: float = DEFAULT_TARGET_ACCURACY
    timeout_s: float = 1800.0
    # Measure the baseline twice, as two interleaved arms, and report their difference as this
    # run's noise floor (bench.stats.noise_floor).
    aa_control: bool = False

    def record_section(self) -> dict[str, Any]:
        """The 'settings' section of each record: how its one job was measured."""
        return {k: v for k, v in asdict(self).items() if k != "repeats"}
