"""A variant: one point of the benchmark matrix, frozen so repeats group by it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from mnist_models.spec import LEARNING_RATE, POLICIES, TRAIN_IMAGES

# The axes every report tabulates and compares one at a time.
HEADLINE_AXES = ("batch_size", "validation", "precision", "device", "backend")
VALIDATIONS = ("per_epoch", "end_only", "split", "freq")
PRECISIONS = POLICIES
DEVICES = ("cpu", "gpu")
# Keras 3 backends: the job's process sets KERAS_BACKEND before Keras is imported (bench.run.worker).
DEFAULT_BACKEND = "tensorflow"
BACKENDS = (DEFAULT_BACKEND, "jax", "torch")
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
    "control": "control",
    "learning_rate": "lr",
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
    # The A/A control: a second, identical arm of the baseline, measured to see the run's noise.
    control: bool = False
    # Adam's step size: the walkthrough's 0.01 (Keras' own default is 0.001).
    learning_rate: float = LEARNING_RATE

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


# Upper bounds that keep every value within what Keras, NumPy seeding and this machine can take.
MAX_EPOCHS = 10_000
MAX_SEED = 2**31 - 1  # the seed of repeat r is seed + r, and NumPy's seeds stop at 2**32 - 1
MAX_REPLICAS = 64  # multi_worker starts this many processes
MAX_STEPS_PER_EXECUTION = TRAIN_IMAGES
MAX_VALIDATION_FREQ = MAX_EPOCHS


def shown(value: Any, limit: int = 60) -> str:
    """repr(value) for a message: shortened, and never raising (huge ints cannot be printed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 160:
        return f"<an integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_int(value: Any) -> bool:
    """An int that is not a bool (TOML and JSON give both)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(name: str, lo: int, hi: int) -> Any:
    def check(v: Any) -> None:
        if not is_int(v) or not lo <= v <= hi:
            raise VariantError(f"{name}={shown(v)}: must be an integer >= {lo} and <= {hi}")

    return check


def _choice(name: str, choices: tuple[str, ...]) -> Any:
    def check(v: Any) -> None:
        if not isinstance(v, str) or v not in choices:
            raise VariantError(f"{name}={shown(v)}: choose from {list(choices)}")

    return check


def _check_batch_size(v: Any) -> None:
    if not is_int(v) or not 0 < v <= TRAIN_IMAGES:
        raise VariantError(f"batch_size={shown(v)}: must be an integer in 1..{TRAIN_IMAGES}")


def _check_validation_split(v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise VariantError(f"validation_split={shown(v)}: must be a number in (0, 1)")
    if not 0 < v < 1:
        raise VariantError(f"validation_split={shown(v)}: must be in (0, 1)")


def _check_learning_rate(v: Any) -> None:
    if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
        raise VariantError(
            f"learning_rate={shown(v)}: must be a positive finite number, e.g. 0.001"
        )


def _check_jit_compile(v: Any) -> None:
    if not (isinstance(v, bool) or v == "auto"):
        raise VariantError(f"jit_compile={shown(v)}: choose from [false, true, 'auto']")


def _boolean(name: str) -> Any:
    def check(v: Any) -> None:
        if not isinstance(v, bool):
            raise VariantError(f"{name}={shown(v)}: must be true or false")

    return check


# Each field checked on its own; check_variant adds the checks that involve two fields.
FIELD_CHECKS = {
    "batch_size": _check_batch_size,
    "validation": _choice("validation", VALIDATIONS),
    "precision": _choice("precision", PRECISIONS),
    "device": _choice("device", DEVICES),
    "backend": _choice("backend", BACKENDS),
    "epochs": _integer("epochs", 1, MAX_EPOCHS),
    "validation_split": _check_validation_split,
    "validation_freq": _integer("validation_freq", 1, MAX_VALIDATION_FREQ),
    "steps_per_execution": _integer("steps_per_execution", 1, MAX_STEPS_PER_EXECUTION),
    "jit_compile": _check_jit_compile,
    "seed": _integer("seed", 0, MAX_SEED),
    "strategy": _choice("strategy", STRATEGIES),
    "replicas": _integer("replicas", 1, MAX_REPLICAS),
    "control": _boolean("control"),
    "learning_rate": _check_learning_rate,
}


def check_field(name: str, value: Any) -> None:
    """Raise VariantError unless `value` is valid for field `name` on its own."""
    FIELD_CHECKS[name](value)


def check_variant(v: Variant) -> None:
    """Raise VariantError naming the first invalid field and what is allowed."""
    for f in fields(v):
        check_field(f.name, getattr(v, f.name))
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
