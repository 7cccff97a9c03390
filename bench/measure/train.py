"""Train one variant in this process and measure it. Imports Keras, on the backend the process
chose (bench.run.worker sets KERAS_BACKEND); TensorFlow only where the backend is tensorflow."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from bench.measure import backend, costs, distribute, memory
from bench.measure.baton import Baton
from bench.measure.clock import StepClock
from bench.plan.variant import Variant
from mnist_models import mlp
from mnist_models.data import Mnist


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


def _gpu_peak_bytes(variant: Variant) -> int | None:
    """The backend allocator's peak bytes in use on the GPU; None on CPU or where it cannot say."""
    if variant.device != "gpu":
        return None
    try:
        if variant.backend == "tensorflow":
            import tensorflow as tf

            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
        if variant.backend == "jax":
            import jax

            stats = jax.devices("gpu")[0].memory_stats() or {}
            return int(stats["peak_bytes_in_use"]) if "peak_bytes_in_use" in stats else None
        import torch

        return int(torch.cuda.max_memory_allocated())
    except (ValueError, RuntimeError):
        return None


@dataclass(frozen=True)
class Interleave:
    """Train in blocks of about `block_s` seconds, handing the machine back between them.

    ``wait(where)`` blocks until the driver gives this process its next turn (``bench.run.turns``).
    """

    block_s: float
    wait: Callable[[str], float | None]


@dataclass
class Trained:
    """What one fit + evaluate produced, before it becomes a record."""

    model: keras.Model
    history: dict[str, list[float]]
    clock: StepClock
    fit_s: float
    test_loss: float
    test_accuracy: float
    final_eval_s: float
    pauses: list[list[float]] | None  # None: not interleaved
    blocks: list[dict[str, Any]] | None = None  # per block: steps, wall, CPU and steal seconds


def train(
    model: keras.Model,
    variant: Variant,
    x: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
    interleave: Interleave | None = None,
) -> Trained:
    """model.fit as the tutorial calls it, timed by a StepClock, then one evaluate on the test set.

    With `interleave`, a Baton (last, after the clocks) pauses training at block boundaries; the
    pauses are left out of the step times and the epochs' training time, and ``fit_s`` is the
    Baton's ``trained_s`` (from the first turn to training's end, pauses left out). The final
    evaluate runs in the turn that follows training's end, so it too runs alone.
    """
    x_train, y_train, x_test, y_test = x
    clock = StepClock()
    batons = [Baton(interleave.wait, block_s=interleave.block_s, clock=clock)] if interleave else []
    fit_start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=variant.batch_size,
        epochs=variant.epochs,
        callbacks=[clock, *callbacks, *batons],
        verbose=verbose,
        shuffle=True,
        **_fit_kwargs(variant, x_test, y_test),
    ).history
    # Interleaved: fit's epochs in its own turns, not its setup before the first turn (start-up,
    # side by side) nor its end after training's last wait (in job_s; see Baton.trained_s).
    fit_s = batons[0].trained_s if batons else time.perf_counter() - fit_start
    eval_start = time.perf_counter()
    test_loss, test_accuracy = model.evaluate(
        x_test, y_test, batch_size=variant.batch_size, verbose=0
    )
    final_eval_s = time.perf_counter() - eval_start
    pauses = batons[0].pauses if batons else None
    blocks = batons[0].blocks if batons else None
    return Trained(
        model,
        history,
        clock,
        fit_s,
        float(test_loss),
        float(test_accuracy),
        final_eval_s,
        pauses,
        blocks,
    )


def run_variant(
    variant: Variant,
    data: Mnist,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
    interleave: Interleave | None = None,
) -> dict[str, Any]:
    """Train and evaluate one variant; return the raw measured fields of its record.

    Nothing here is a statistic: ``bench.stats.repeat_stats`` derives those (warm-up exclusion
    included) from what this returns, when records are read.

    ``callbacks`` are for experiments through the API (e.g. a test that forces divergence, or a
    gate check that injects extra work per step); matrices never set them.
    """
    backend.check_backend(variant.backend)
    strategy = distribute.make_strategy(variant)  # first: multi_worker must precede other TF work
    keras.utils.set_random_seed(variant.seed)
    arrays = _scaled_arrays(data)
    with backend.captured_warnings() as caught, distribute.scope(variant, strategy):
        model = _build_model(variant, strategy)
        run = train(model, variant, arrays, callbacks, verbose, interleave)

    peak_rss_bytes, peak_rss_source = memory.peak_rss()
    losses = _finite_losses(run)
    return {
        "distribution": distribute.describe(variant, strategy),
        "backend": backend.describe(model, variant.jit_compile, caught),
        "timing": _timing(run, variant, len(arrays[0])),
        "accuracy": _accuracy(run, variant, losses, len(arrays[0])),
        "model": model_facts(model, variant),
        "memory": {
            # The whole job process, the backend itself included.
            "peak_rss_bytes": peak_rss_bytes,
            "peak_rss_source": peak_rss_source,
            "gpu_peak_bytes": _gpu_peak_bytes(variant),
        },
    }


def _scaled_arrays(data: Mnist) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) with the images scaled as the reference does."""
    return (
        mlp.scale_images(data.x_train),
        data.y_train,
        mlp.scale_images(data.x_test),
        data.y_test,
    )


def _build_model(variant: Variant, strategy: Any) -> keras.Model:
    """The reference MLP for this variant, checked to be on its device (call inside the scope)."""
    model = mlp.build_mlp(
        variant.precision,
        learning_rate=variant.learning_rate,
        jit_compile=variant.jit_compile,
        steps_per_execution=variant.steps_per_execution,
    )
    backend.check_device(model, variant.device)
    if variant.strategy == "multi_worker":
        distribute.patch_keras_multi_worker(model, strategy)
    return model


def _finite_losses(run: Trained) -> list[float]:
    """The per-epoch training losses; Diverged if any of them or the test loss is not finite."""
    losses = [float(v) for v in run.history["loss"]]
    if not all(math.isfinite(v) for v in losses) or not math.isfinite(run.test_loss):
        raise Diverged(f"loss became non-finite (per-epoch loss {losses})")
    return losses


def _accuracy(
    run: Trained, variant: Variant, losses: list[float], train_available: int
) -> dict[str, Any]:
    """The record's 'accuracy' section: per-epoch curves and the final test evaluation."""
    return {
        "loss": losses,
        **{
            key: _per_epoch(run.history, key, variant)
            for key in ("accuracy", "val_loss", "val_accuracy")
        },
        "test_loss": run.test_loss,
        "test_accuracy": run.test_accuracy,
        "train_images": variant.train_images(train_available),
    }


def _timing(run: Trained, variant: Variant, train_available: int) -> dict[str, Any]:
    """The record's raw 'timing' section."""
    epochs = run.clock.epochs
    return {
        "steps_per_epoch": variant.steps_per_epoch(train_available),
        # Raw per-call times (ms, 0.1 µs resolution) per epoch; bench.stats derives the rest.
        "step_ms_raw": [[round(1000 * s, 4) for s in e.step_s] for e in epochs],
        "train_s_per_epoch": [e.train_s for e in epochs],
        "val_s_per_epoch": [e.val_s for e in epochs],
        "fit_s": run.fit_s,
        "final_eval_s": run.final_eval_s,
        # Interleaved only: [training steps so far, seconds] of each wait for the machine; the
        # step after each is its block's first (bench.stats leaves it out).
        **({"pauses": run.pauses} if run.pauses is not None else {}),
        # Interleaved only: each block of training (they end at the pauses, the last at the end
        # of training) with its wall, process CPU and machine steal seconds (bench.measure.cputime).
        **({"blocks": run.blocks} if run.blocks is not None else {}),
    }


def model_facts(model: keras.Model, variant: Variant) -> dict[str, Any]:
    """The record's 'model' section: layers, parameter and optimizer memory, analytic costs."""
    return {
        "layers": mlp.layer_table(model),
        "params": mlp.parameter_count(model),
        "param_bytes": mlp.parameter_bytes(model),
        "param_dtypes": sorted({str(w.dtype) for w in model.weights}),
        "compute_dtypes": [layer.compute_dtype for layer in model.layers],
        "optimizer": type(model.optimizer).__name__,
        "optimizer_bytes": mlp.variable_bytes(list(model.optimizer.variables)),
        "activation_bytes_per_batch_est": costs.activation_bytes(
            variant.batch_size, variant.precision
        ),
        "flops_per_step": costs.train_step_flops(variant.batch_size),
    }
