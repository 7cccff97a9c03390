"""What the gates measure: batch size, precision and the fixed slice of real MNIST of each variant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.plan.variant import Variant

TEST_IMAGES = 256  # the harness always evaluates at the end; keep that short


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

# A/B gate: each round is a fresh process whose TensorFlow import costs several times the training,
# so each process trains longer (~2 s per variant on a quiet 2-core CPU): 1,200 and 220 steps, of
# which the first 10 are warm-up. Two epochs each, so the wall time includes an epoch boundary.
AB_VARIANTS = (
    GateVariant("bs32-float32", 32, "float32", 19200, epochs=2),
    GateVariant("bs512-float32", 512, "float32", 56320, epochs=2),
)
