"""The calibration step: the reference MLP's training step in plain TensorFlow, no Keras.

Same layer shapes (784→128→128→10), same batch, ReLU, softmax cross-entropy and an Adam update
written out by hand, all in one ``tf.function`` that takes its batch from a prefetching tf.data
iterator, as Keras' fit does: the harness's arithmetic without Keras' training loop, which the
micro-benchmarks (``tests/benchmarks``) time beside the Keras step. Imports TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from mnist_models.spec import DENSE_SHAPES, LEARNING_RATE, POLICIES

# mixed_float16 would need loss scaling written out too.
PRECISIONS = tuple(p for p in POLICIES if p != "mixed_float16")
# Keras' Adam defaults, which the reference model uses.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7


class CalibrationStep:
    """One compiled forward+backward+Adam step on a fixed batch; call it to run one step."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        precision: str = "float32",
        learning_rate: float = LEARNING_RATE,
        seed: int = 0,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"calibration precision {precision!r}: choose from {PRECISIONS}")
        if x.ndim < 2 or len(x) != len(y) or not len(x):
            raise ValueError(f"calibration batch: x {x.shape} and y {y.shape} must pair up")
        features = int(np.prod(x.shape[1:]))
        if features != DENSE_SHAPES[0][0]:
            raise ValueError(
                f"calibration batch: {features} features, expected {DENSE_SHAPES[0][0]}"
            )
        self.batch_size = len(x)
        self.precision = precision
        rng = np.random.default_rng(seed)
        batch = (
            tf.constant(x.reshape(len(x), features), dtype=tf.float32),
            tf.constant(y, dtype=tf.int64),
        )
        # The harness's step includes an input pipeline's thread hand-off too; with a busy
        # neighbour on the core, the batch-32 ratio shifted +10% with this, +20% without.
        dataset = tf.data.Dataset.from_tensors(batch).repeat().prefetch(tf.data.AUTOTUNE)
        self._batches = iter(dataset)
        self._params: list[tf.Variable] = []
        for fan_in, fan_out in DENSE_SHAPES:
            limit = np.sqrt(6 / (fan_in + fan_out))  # Glorot uniform, as Keras' Dense
            kernel = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
            self._params += [tf.Variable(kernel), tf.Variable(np.zeros(fan_out, np.float32))]
        self._m = [tf.Variable(tf.zeros_like(p)) for p in self._params]
        self._v = [tf.Variable(tf.zeros_like(p)) for p in self._params]
        self._iterations = tf.Variable(0.0)
        self._lr = float(learning_rate)
        self._compute = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
        self._step = tf.function(self._train_step)

    def _train_step(self, batches: Any) -> tf.Tensor:
        x, y = next(batches)
        with tf.GradientTape() as tape:
            h = x
            for layer in range(len(DENSE_SHAPES)):
                kernel, bias = self._params[2 * layer], self._params[2 * layer + 1]
                # As the Keras policy: hidden layers compute low-precision, the output in float32.
                dtype = self._compute if layer < len(DENSE_SHAPES) - 1 else tf.float32
                h = tf.matmul(tf.cast(h, dtype), tf.cast(kernel, dtype)) + tf.cast(bias, dtype)
                if layer < len(DENSE_SHAPES) - 1:
                    h = tf.nn.relu(h)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h)
            )
        grads = tape.gradient(loss, self._params)
        self._iterations.assign_add(1.0)
        lr = self._lr * tf.sqrt(1 - BETA_2**self._iterations) / (1 - BETA_1**self._iterations)
        for p, m, v, g in zip(self._params, self._m, self._v, grads, strict=True):
            m.assign(BETA_1 * m + (1 - BETA_1) * g)
            v.assign(BETA_2 * v + (1 - BETA_2) * tf.square(g))
            p.assign_sub(lr * m / (tf.sqrt(v) + EPSILON))
        return loss

    def __call__(self) -> float:
        """Run one step; returns its loss, read back so the step has really finished."""
        return float(self._step(self._batches).numpy())
