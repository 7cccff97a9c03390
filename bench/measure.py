"""Train one variant in this process and measure it. Imports TensorFlow."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bench import costs, distribute, stats
from bench.clock import StepClock
from bench.variant import Variant
from mnist_models import mlp
from mnist_models.data import Mnist

DEFAULT_WARMUP_STEPS = 10


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


def _fit_kwargs(variant: Variant, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    if variant.validation == "per_epoch":
        return {"validation_data": (x_test, y_test)}
    if variant.validation == "freq":
        return {"validation_data": (x_test, y_test), "validation_freq": variant.validation_freq}
    if variant.validation == "split":
        return {"validation_split": variant.validation_split}
    return {}


def time_to_target(
    train_s: Sequence[float], val_accuracy: Sequence[float | None], target: float
) -> float | None:
    """Cumulative training time (validation excluded) until val accuracy first reaches target."""
    elapsed = 0.0
    for seconds, acc in zip(train_s, val_accuracy, strict=True):
        elapsed += seconds
        if acc is not None and acc >= target:
            return elapsed
    return None


def _per_epoch(history: dict[str, list[float]], key: str, variant: Variant) -> list[float | None]:
    """History values aligned to epochs; validation_freq leaves gaps, filled with None."""
    values = list(history.get(key, []))
    if key.startswith("val_") and variant.validation == "freq":
        it = iter(values)
        return [
            next(it) if (e + 1) % variant.validation_freq == 0 else None
            for e in range(variant.epochs)
        ]
    if key.startswith("val_") and variant.validation == "end_only":
        return [None] * variant.epochs
    return [float(v) for v in values]


def _gpu_peak_bytes(device: str) -> int | None:
    if device != "gpu":
        return None
    try:
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    except (ValueError, RuntimeError):
        return None


def run_variant(
    variant: Variant,
    data: Mnist,
    *,
    warmup_steps: int = DEFAULT_WARMUP_STEPS,
    target_accuracy: float = 0.97,
    learning_rate: float = mlp.LEARNING_RATE,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
) -> dict[str, Any]:
    """Train and evaluate one variant; return the measured fields of its record.

    ``learning_rate`` and ``callbacks`` are for experiments through the API (e.g. a test that forces
    divergence, or a gate check that injects extra work per step); matrices never set them.
    """
    strategy = distribute.make_strategy(variant)  # first: multi_worker must precede other TF work
    keras.utils.set_random_seed(variant.seed)
    device_name = "/GPU:0" if variant.device == "gpu" else "/CPU:0"
    x_train, x_test = mlp.scale_images(data.x_train), mlp.scale_images(data.x_test)
    y_train, y_test = data.y_train, data.y_test

    # Under a strategy the model, optimizer and metrics are created in its scope, so their
    # variables are mirrored; fit then splits each global batch over the replicas.
    with strategy.scope() if strategy is not None else tf.device(device_name):
        model = mlp.build_mlp(
            variant.precision,
            learning_rate=learning_rate,
            jit_compile=variant.jit_compile,
            steps_per_execution=variant.steps_per_execution,
        )
        if variant.strategy == "multi_worker":
            distribute.patch_keras_multi_worker(model, strategy)
        clock = StepClock()
        fit_start = time.perf_counter()
        history = model.fit(
            x_train,
            y_train,
            batch_size=variant.batch_size,
            epochs=variant.epochs,
            callbacks=[clock, *callbacks],
            verbose=verbose,
            shuffle=True,
            **_fit_kwargs(variant, x_test, y_test),
        ).history
        fit_s = time.perf_counter() - fit_start
        eval_start = time.perf_counter()
        test_loss, test_accuracy = model.evaluate(
            x_test, y_test, batch_size=variant.batch_size, verbose=0
        )
        final_eval_s = time.perf_counter() - eval_start

    losses = [float(v) for v in history["loss"]]
    if not all(math.isfinite(v) for v in losses) or not math.isfinite(test_loss):
        raise Diverged(f"loss became non-finite (per-epoch loss {losses})")

    spe = variant.steps_per_execution
    # With steps_per_execution > 1 Keras calls back once per execution; spread it over its steps.
    step_ms = [1000 * s / spe for epoch in clock.epochs for s in epoch.step_s]
    first_step_ms = step_ms[0]
    warm = max(1, math.ceil(warmup_steps / spe))
    timed = step_ms[warm:] if len(step_ms) > warm else step_ms[-1:]
    train_s = [e.train_s for e in clock.epochs]
    val_s = [e.val_s for e in clock.epochs]
    steps_per_epoch = variant.steps_per_epoch(len(x_train))
    step_summary = stats.summarize(timed)
    median_s = step_summary["median"] / 1000  # type: ignore[operator]
    # Cross-check: all training wall time but the trace step, over all steps but that one.
    total_steps = steps_per_epoch * variant.epochs
    if total_steps > spe:
        wall_step_ms = (1000 * sum(train_s) - first_step_ms * spe) / (total_steps - spe)
    else:  # one execution (e.g. a batch as large as a small slice): nothing but the trace to time
        wall_step_ms = 1000 * sum(train_s) / total_steps
    val_accuracy = _per_epoch(history, "val_accuracy", variant)
    flops = costs.train_step_flops(variant.batch_size)

    optimizer_vars = list(model.optimizer.variables)
    return {
        "distribution": distribute.describe(variant, strategy, device_name),
        "timing": {
            "warmup_steps_excluded": warm * spe,
            "steps_per_epoch": steps_per_epoch,
            "steps_timed": len(timed) * spe,
            "first_step_ms": first_step_ms,
            "step_ms": step_summary,
            "wall_step_ms": wall_step_ms,
            "train_s_per_epoch": train_s,
            "val_s_per_epoch": val_s,
            "fit_s": fit_s,
            "final_eval_s": final_eval_s,
            "samples_per_s": variant.batch_size / median_s,
            "wall_samples_per_s": variant.batch_size / (wall_step_ms / 1000),
            # Raw per-call times (ms, 0.1 µs resolution) per epoch, so any statistic can be redone.
            "step_ms_raw": [[round(1000 * s, 4) for s in e.step_s] for e in clock.epochs],
        },
        "accuracy": {
            "loss": losses,
            "accuracy": _per_epoch(history, "accuracy", variant),
            "val_loss": _per_epoch(history, "val_loss", variant),
            "val_accuracy": val_accuracy,
            "test_loss": float(test_loss),
            "test_accuracy": float(test_accuracy),
            "target_accuracy": target_accuracy,
            "time_to_target_s": time_to_target(train_s, val_accuracy, target_accuracy),
            "train_images": variant.train_images(len(x_train)),
        },
        "model": {
            "layers": mlp.layer_table(model),
            "params": mlp.parameter_count(model),
            "param_bytes": mlp.parameter_bytes(model),
            "param_dtypes": sorted({str(w.dtype) for w in model.weights}),
            "compute_dtypes": [layer.compute_dtype for layer in model.layers],
            "optimizer": type(model.optimizer).__name__,
            "optimizer_bytes": mlp.variable_bytes(optimizer_vars),
            "activation_bytes_per_batch_est": costs.activation_bytes(
                variant.batch_size, variant.precision
            ),
            "flops_per_step": flops,
            "achieved_flops_per_s": flops / median_s,
        },
        "memory": {
            # ru_maxrss is KiB on Linux; the whole child process, TensorFlow itself included.
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "gpu_peak_bytes": _gpu_peak_bytes(variant.device),
        },
    }
