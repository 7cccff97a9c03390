"""The step-time regression gate's measurement: harness vs calibration, interleaved. Imports TF.

Per round and gate variant: A = the harness's step time (``bench.measure.train.run_variant``, one epoch on
a fixed slice of real MNIST, warm-up excluded, timed by ``bench.measure.clock.StepClock``), then B = the
step time of ``bench.measure.calibration.CalibrationStep`` (the same step without Keras) at the same batch
size and precision. Rounds go A B A B …, so drift of the machine's speed hits both sides of every
ratio A/B alike. The comparison against the baseline is ``bench.gate.stored_rule`` (pure).

The step time compared is each run's fastest timed step, not its median: other processes only ever
add time to a step, and on the shared 2-core machine busy neighbours moved the median-based ratio
several times more than the fastest-step ratio (README, "Regression gate"). Medians and means are
recorded too, for people.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import keras

from bench import stats
from bench.measure import calibration
from bench.measure.threads import pin_threads, thread_settings
from bench.measure.train import run_variant
from bench.plan.gate_variants import GATE_VARIANTS, ROUND_LISTS, TEST_IMAGES, GateVariant
from bench.plan.settings import DEFAULT_WARMUP_STEPS
from mnist_models import mlp
from mnist_models.data import Mnist

WARMUP_STEPS = DEFAULT_WARMUP_STEPS
# One thread per TF pool for both workloads: with TF's default (one per core) on the shared 2-core
# machine the ratio's run-to-run spread was several times larger, and CI machines' core counts differ.
GATE_THREADS = 1


CallbackFactory = Callable[[], Sequence[keras.callbacks.Callback]]


def data_slice(data: Mnist, train_images: int) -> Mnist:
    """The first `train_images` training and TEST_IMAGES test images; same provenance."""
    if len(data.x_train) < train_images:
        raise ValueError(
            f"the gate needs {train_images} training images, the data set has {len(data.x_train)}"
        )
    return data.head(train_images, TEST_IMAGES)


def _calibration_step(gv: GateVariant, piece: Mnist) -> calibration.CalibrationStep:
    """The Keras-free step of this variant on its slice's first batch."""
    x = mlp.scale_images(piece.x_train[: gv.batch_size])
    return calibration.CalibrationStep(x, piece.y_train[: gv.batch_size], precision=gv.precision)


def _entry(gv: GateVariant, warmup_steps: int) -> dict[str, Any]:
    """A variant's setup and its empty per-round lists; ValueError when too few steps are timed."""
    timed = gv.timed_steps(warmup_steps)
    if timed < 20:
        raise ValueError(f"{gv.name}: only {timed} timed steps; use more data")
    return {
        "batch_size": gv.batch_size,
        "precision": gv.precision,
        "train_images": gv.train_images,
        "epochs": gv.epochs,
        "timed_steps": timed,
        **{key: [] for key in ROUND_LISTS},
    }


def _append_round(row: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> None:
    """One round's harness (a) and calibration (b) step summaries onto a variant's lists."""
    row["ratios"].append(a["min"] / b["min"])
    for key, source in (("harness", a), ("calibration", b)):
        row[f"{key}_ms"].append(float(source["min"]))
        row[f"{key}_median_ms"].append(float(source["median"]))
        row[f"{key}_mean_ms"].append(float(source["mean"]))


def measure(
    data: Mnist,
    *,
    variants: Sequence[GateVariant] = GATE_VARIANTS,
    rounds: int,
    warmup_steps: int = WARMUP_STEPS,
    callbacks: CallbackFactory | None = None,
    on_round: Callable[[str, int, float, float], None] | None = None,
) -> dict[str, Any]:
    """Interleaved harness/calibration rounds; per variant, lists (one a round) named in ROUND_LISTS.

    Plain data, written by whoever called it (``bench.gate.regress``); the rule is
    ``bench.gate.stored_rule``.

    ``callbacks`` makes fresh Keras callbacks for each harness run (passed to run_variant); it is
    how an experiment adds work to the harness's step. ``on_round(name, round, a_ms, b_ms)``
    reports progress with each side's fastest step.
    """
    pin_threads(GATE_THREADS)
    start = time.perf_counter()
    slices = {gv.name: data_slice(data, gv.train_images) for gv in variants}
    steps = {gv.name: _calibration_step(gv, slices[gv.name]) for gv in variants}
    out = {gv.name: _entry(gv, warmup_steps) for gv in variants}
    for r in range(rounds):
        for gv in variants:
            extra = list(callbacks()) if callbacks else []
            raw = run_variant(gv.variant(), slices[gv.name], callbacks=extra)["timing"]
            a: dict[str, Any] = stats.summarize(
                stats.timed_steps(raw["step_ms_raw"], warmup_steps)[1]
            )
            b: dict[str, Any] = stats.summarize(
                calibration.time_steps(steps[gv.name], out[gv.name]["timed_steps"], warmup_steps)
            )
            _append_round(out[gv.name], a, b)
            if on_round:
                on_round(gv.name, r, a["min"], b["min"])
    return {
        "rounds": rounds,
        "warmup_steps": warmup_steps,
        "threads": thread_settings(),
        "data": data.provenance(),
        "elapsed_s": time.perf_counter() - start,
        "variants": out,
    }
