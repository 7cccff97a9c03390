"""What the A/B gate measures: each variant's batch size, precision and slice of real MNIST, the request.

Also the entry point's contract constants (``CONTRACT``, ``INJECT_ENV``): the driver
(``bench.run.gate_rounds``), the entry point (``bench.gate_probe``) and the measuring side
(``bench.measure.ab_runs``) all read them from here, below all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONTRACT = 1  # of ``python -m bench.gate_probe``; see that module's docstring
INJECT_ENV = "MNIST_BENCH_GATE_INJECT"  # test-only extra work per step (bench.measure.ab_runs)
TEST_IMAGES = 256  # the harness always evaluates at the end; keep that short


@dataclass(frozen=True)
class GateVariant:
    """One measured point: batch size, precision and the training images and epochs of a round."""

    name: str
    batch_size: int
    precision: str
    train_images: int
    epochs: int = 1

    def request_run(self) -> dict[str, Any]:
        """This variant as one run of a contract-1 request."""
        return {
            "name": self.name,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "train_images": self.train_images,
            "test_images": TEST_IMAGES,
            "epochs": self.epochs,
        }


# Each round is a fresh process per side. Its runs are sized by time, not steps: each
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


def side_request(
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
        "runs": [v.request_run() for v in variants],
        "warmup_steps": warmup_steps,
        "threads": threads,
        "data": data,
    }
    if train_s is not None:
        request["train_s"] = train_s
        request["min_timed_steps"] = AB_MIN_TIMED_STEPS
    return request
