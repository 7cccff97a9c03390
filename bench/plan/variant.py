"""A variant: one point of the benchmark matrix, frozen so repeats group by it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from mnist_models.spec import POLICIES, TRAIN_IMAGES

# The axes every report tabulates and compares one at a time.
HEADLINE_AXES = ("batch_size", "validation", "precision", "device", "backend")
VALIDATIONS = ("per_epoch", "end_only", "split", "freq")
PRECISIONS = POLICIES
DEVICES = ("cpu", "gpu")
# Keras 3 backends: the job's process sets KERAS_BACKEND before Keras is imported (bench.run.worker).
DEFAULT_BACKEND = "tensorflow"
BACKENDS = (DEFAULT_BACKEND, "jax", "torch")
# model.compile(jit_compile=...): False, True, or "auto" (each backend's own Keras default).
JIT_COMPILE = (False, True, "auto")
# default: one device; mirrored: tf.distribute.MirroredStrategy over `replicas` GPUs or logical CPU
# devices; multi_worker: tf.distribute.MultiWorkerMirroredStrategy over `replicas` worker processes.
STRATEGIES = ("default", "mirrored", "multi_worker")

# Short labels for fields outside the four headline axes, used in the id only when non-default.
_ID_LABELS = {
    "epochs": "e",
    "validation_split": "vs",
    "validation_freq": "vf",
    "steps_per_execution": "spe",
    "jit_compile": "xla",  # True → 'xla', "auto" → 'jitauto' (see Variant.id)
    "seed": "seed",
}


class VariantError(ValueError):
    """A variant field has a value the harness cannot run; the message names field and choices."""


@dataclass(frozen=True)
class Variant:
    """What is measured: the reference MLP trained under these settings."""

    batch_size: int = 32
    validation: str = "per_epoch"
    precision: str = "float32"
    device: str = "cpu"
    backend: str = DEFAULT_BACKEND
    epochs: int = 1
    validation_split: float = 0.1
    validation_freq: int = 2
    steps_per_execution: int = 1
    jit_compile: bool | str = False  # False, True or "auto"; what it means depends on the backend
    seed: int = 0
    strategy: str = "default"
    replicas: int = 2  # used by mirrored/multi_worker only, like validation_freq by freq

    def __post_init__(self) -> None:
        check_variant(self)

    @property
    def id(self) -> str:
        """e.g. 'bs128-split-mixed_float16-cpu', plus '-jax', '-mirrored2', '-e3' tags if non-default."""
        parts = [f"bs{self.batch_size}", self.validation, self.precision, self.device]
        if self.backend != DEFAULT_BACKEND:
            parts.append(self.backend)
        if self.strategy != "default":
            parts.append(f"{self.strategy}{self.replicas}")
        for f in fields(self):
            label = _ID_LABELS.get(f.name)
            value = getattr(self, f.name)
            if label is None or value == f.default:
                continue
            if f.name == "validation_split" and self.validation != "split":
                continue
            if f.name == "validation_freq" and self.validation != "freq":
                continue
            if f.name == "jit_compile" and value == "auto":
                parts.append("jitauto")
                continue
            parts.append(label if value is True else f"{label}{value}")
        return "-".join(parts)

    @property
    def replicas_in_sync(self) -> int:
        """Model replicas that share each global batch: 1 under the default strategy."""
        return 1 if self.strategy == "default" else self.replicas

    @property
    def per_replica_batch(self) -> int:
        """Images each replica computes per step; batch_size is always the global batch."""
        return self.batch_size // self.replicas_in_sync

    def train_images(self, available: int = TRAIN_IMAGES) -> int:
        """Images the model trains on: validation_split holds the last fraction back."""
        if self.validation == "split":
            return int(available * (1 - self.validation_split))  # as Keras splits
        return available

    def steps_per_epoch(self, available: int = TRAIN_IMAGES) -> int:
        """Optimizer steps per epoch (the last batch may be partial)."""
        return -(-self.train_images(available) // self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        """Every field, as recorded in the 'variant' section of a record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Variant:
        """The inverse of to_dict; unknown fields are an error, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise VariantError(
                f"unknown variant field(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_variant(v: Variant) -> None:
    """Raise VariantError naming the first invalid field and what is allowed."""
    if not _is_int(v.batch_size) or not 0 < v.batch_size <= TRAIN_IMAGES:
        raise VariantError(f"batch_size={v.batch_size!r}: must be an integer in 1..{TRAIN_IMAGES}")
    if v.validation not in VALIDATIONS:
        raise VariantError(f"validation={v.validation!r}: choose from {list(VALIDATIONS)}")
    if v.precision not in PRECISIONS:
        raise VariantError(f"precision={v.precision!r}: choose from {list(PRECISIONS)}")
    if v.device not in DEVICES:
        raise VariantError(f"device={v.device!r}: choose from {list(DEVICES)}")
    if v.backend not in BACKENDS:
        raise VariantError(f"backend={v.backend!r}: choose from {list(BACKENDS)}")
    if not _is_int(v.epochs) or v.epochs < 1:
        raise VariantError(f"epochs={v.epochs!r}: must be an integer >= 1")
    if isinstance(v.validation_split, bool) or not isinstance(v.validation_split, int | float):
        raise VariantError(f"validation_split={v.validation_split!r}: must be a number in (0, 1)")
    if not 0 < v.validation_split < 1:
        raise VariantError(f"validation_split={v.validation_split!r}: must be in (0, 1)")
    if not _is_int(v.validation_freq) or v.validation_freq < 1:
        raise VariantError(f"validation_freq={v.validation_freq!r}: must be an integer >= 1")
    if not _is_int(v.steps_per_execution) or v.steps_per_execution < 1:
        raise VariantError(
            f"steps_per_execution={v.steps_per_execution!r}: must be an integer >= 1"
        )
    if not (isinstance(v.jit_compile, bool) or v.jit_compile == "auto"):
        raise VariantError(f"jit_compile={v.jit_compile!r}: choose from [false, true, 'auto']")
    if not _is_int(v.seed) or v.seed < 0:
        raise VariantError(f"seed={v.seed!r}: must be an integer >= 0")
    if v.strategy not in STRATEGIES:
        raise VariantError(f"strategy={v.strategy!r}: choose from {list(STRATEGIES)}")
    if not _is_int(v.replicas) or v.replicas < 1:
        raise VariantError(f"replicas={v.replicas!r}: must be an integer >= 1")
    if v.batch_size % v.replicas_in_sync:
        raise VariantError(
            f"batch_size={v.batch_size} (the global batch) is not divisible by replicas="
            f"{v.replicas}: every replica must get the same per-replica batch"
        )
    if v.batch_size > v.train_images():
        raise VariantError(
            f"batch_size={v.batch_size}: larger than the {v.train_images()} training images"
        )


FIELD_NAMES = tuple(f.name for f in fields(Variant))  # every axis a matrix may vary
