"""What the gates measure: each variant's batch size, precision and slice of real MNIST, and the request.

Also the A/B gate probe's contract constants (``CONTRACT``, ``INJECT_ENV``): the driver
(``bench.run.ab_rounds``), the entry point (``bench.gate_probe``) and the measuring side
(``bench.measure.ab_runs``) all read them from here, below all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.plan.variant import Variant

CONTRACT = 1  # of ``python -m bench.gate_probe``; see that module's docstring
INJECT_ENV = "MNIST_BENCH_GATE_INJECT"  # test-only extra work per step (bench.measure.ab_runs)
TEST_IMAGES = 256  # the harness always evaluates at the end; keep that short
# Per-round lists of a stored-gate variant (bench.measure.stored_rounds): its rule reads the first three, the rest are for people.
REQUIRED_LISTS = ("ratios", "harness_ms", "calibration_ms")
ROUND_LISTS = (
    *REQUIRED_LISTS,
    "harness_median_ms",
    "calibration_median_ms",
    "harness_mean_ms",
    "calibration_mean_ms",
)


@dataclass(frozen=True)
class GateVariant:
    """One measured point: batch size, precision and the training images and epochs of a round."""

    name: str
    batch_size: int
    precision: str
    train_images: int
    epochs: int = 1

    def variant(self) -> Variant:
        """The harness variant on the CPU, validation only at the end."""
        return Variant(
            batch_size=self.batch_size,
            validation="end_only",
            precision=self.precision,
            epochs=self.epochs,
        )

    def timed_steps(self, warmup_steps: int) -> int:
        """Full-batch steps after the warm-up (a partial last batch is not compared)."""
        return self.epochs * (self.train_images // self.batch_size) - warmup_steps

    def probe_run(self) -> dict[str, Any]:
        """This variant as one run of a ``bench.gate_probe`` request (contract 1)."""
        return {
            "name": self.name,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "train_images": self.train_images,
            "test_images": TEST_IMAGES,
            "epochs": self.epochs,
        }


# Stored-baseline gate (harness vs calibration in one process): ~0.6 s of timed steps per side and
# round, so a burst of load rarely covers all of them.
GATE_VARIANTS = (
    GateVariant("bs32-float32", 32, "float32", 19200),
    GateVariant("bs512-float32", 512, "float32", 56320, epochs=2),
)

# A/B gate: each round is a fresh process per side. Its runs are sized by time, not steps: each
# stops after AB_TRAIN_S seconds of its own training (waits for the other side's turns left out),
# or at these sizes (1,200 and 220 steps, two epochs), whichever comes first. On a machine whose
# steps are 4x slower a round then takes the same time with fewer steps; the two sides of a round
# take turns, so the pairing, not the step count, gives the precision.
AB_VARIANTS = (
    GateVariant("bs32-float32", 32, "float32", 19200, epochs=2),
    GateVariant("bs512-float32", 512, "float32", 56320, epochs=2),
)
AB_TRAIN_S = 1.5
# Timed steps a run keeps even past AB_TRAIN_S: 4 turns of 10 steps, so each side has blocks to median.
AB_MIN_TIMED_STEPS = 40


def probe_request(
    variants: Sequence[GateVariant],
    *,
    warmup_steps: int,
    threads: int,
    data: str | None,
    train_s: float | None = None,
) -> dict[str, Any]:
    """A contract-1 request for these gate variants; `train_s` only where both sides support it."""
    request: dict[str, Any] = {
        "contract": CONTRACT,
        "runs": [v.probe_run() for v in variants],
        "warmup_steps": warmup_steps,
        "threads": threads,
        "data": data,
    }
    if train_s is not None:
        request["train_s"] = train_s
        request["min_timed_steps"] = AB_MIN_TIMED_STEPS
    return request
