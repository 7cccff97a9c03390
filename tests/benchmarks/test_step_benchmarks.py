"""pytest-benchmark micro-benchmarks: one compiled training step on a fixed batch, warm-up excluded.

The reference MLP through Keras (``train_on_batch``, which reads the loss back, so the step has
finished) at a few batch sizes and precisions, grouped by (batch size, precision). Run with
`nox -s benchmark`; compare with a saved run of the same machine:
`nox -s benchmark -- --benchmark-compare --benchmark-compare-fail=median:15%`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from bench.measure import costs
from mnist_models import mlp
from mnist_models.data import Mnist

BATCH_SIZES = (32, 128, 512)
PRECISIONS = ("float32", "mixed_bfloat16")
WARMUP_STEPS = 10  # the first call traces the step; the next ones settle allocations and caches


def _batch(data: Mnist, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    return mlp.scale_images(data.x_train[:batch_size]), data.y_train[:batch_size]


def _describe(benchmark, kind: str, batch_size: int, precision: str, threads: dict) -> None:
    benchmark.group = f"bs{batch_size}-{precision}"
    benchmark.extra_info.update(
        kind=kind,
        batch_size=batch_size,
        precision=precision,
        warmup_steps=WARMUP_STEPS,
        tf_threads=threads,
        flops_per_step=costs.train_step_flops(batch_size),
    )


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_keras_train_step(benchmark, one_thread, real_mnist, batch_size, precision):
    x, y = _batch(real_mnist, batch_size)
    x, y = tf.constant(x), tf.constant(y)
    model = mlp.build_mlp(precision)
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(x, y)
    _describe(benchmark, "keras", batch_size, precision, one_thread)
    loss, accuracy = benchmark(model.train_on_batch, x, y)
    assert math.isfinite(loss) and 0 <= accuracy <= 1
