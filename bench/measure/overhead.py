"""Harness overhead: the baseline variant under the harness vs a bare model.fit, side by side.

Both run in this process, interleaved (harness, bare, harness, bare, ...) so drift on a shared
machine hits both alike. Imports TensorFlow.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import keras

from bench import stats
from bench.measure.train import run_variant
from bench.plan.settings import DEFAULT_WARMUP_STEPS
from bench.plan.variant import Variant
from mnist_models import mlp
from mnist_models.data import Mnist


def bare_fit(variant: Variant, data: Mnist) -> dict[str, float]:
    """model.fit exactly as the tutorial calls it, with the least instrumentation that yields times.

    A LambdaCallback appends one perf_counter() per step, the least that yields a per-step median.
    """
    keras.utils.set_random_seed(variant.seed)
    x_train, x_test = mlp.scale_images(data.x_train), mlp.scale_images(data.x_test)
    model = mlp.build_mlp(variant.precision)
    # Per epoch: [epoch start, batch end, batch end, ...]; validation time falls outside.
    stamps: list[list[float]] = []
    cb = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: stamps.append([time.perf_counter()]),
        on_train_batch_end=lambda batch, logs: stamps[-1].append(time.perf_counter()),
    )
    model.fit(
        x_train, data.y_train, batch_size=variant.batch_size, epochs=variant.epochs,
        validation_data=(x_test, data.y_test), callbacks=[cb], verbose=0,
    )  # fmt: skip
    steps = variant.steps_per_epoch(len(x_train))
    intervals = [(b - a) * 1000 for epoch in stamps for a, b in itertools.pairwise(epoch)]
    train_ms = sum((epoch[-1] - epoch[0]) * 1000 for epoch in stamps)
    return {
        "step_ms_median": stats.median(intervals[DEFAULT_WARMUP_STEPS:]),
        "wall_step_ms": train_ms / (steps * variant.epochs),
    }


def harness_fit(variant: Variant, data: Mnist) -> dict[str, float]:
    """The same training through bench.measure.run_variant (what every matrix job does)."""
    timing = run_variant(variant, data)["timing"]
    steps = timing["steps_per_epoch"] * variant.epochs
    timed = stats.timed_steps(timing["step_ms_raw"], DEFAULT_WARMUP_STEPS)[1]
    return {
        "step_ms_median": stats.median(timed),
        "wall_step_ms": 1000 * sum(timing["train_s_per_epoch"]) / steps,
    }


def measure_overhead(variant: Variant, data: Mnist, rounds: int = 5) -> dict[str, Any]:
    """Per-round harness/bare ratios of median step time and of wall time per step."""
    pairs = []
    for _ in range(rounds):
        harness = harness_fit(variant, data)
        bare = bare_fit(variant, data)
        pairs.append({"harness": harness, "bare": bare})
    ratio = {
        key: [p["harness"][key] / p["bare"][key] for p in pairs]
        for key in ("step_ms_median", "wall_step_ms")
    }
    return {
        "variant": variant.id,
        "rounds": pairs,
        "median_ratio": {k: stats.median(v) for k, v in ratio.items()},
        "ratio_range": {k: (min(v), max(v)) for k, v in ratio.items()},
    }
