"""The reference Keras MLP on MNIST, built exactly as the classic tutorial does."""

from __future__ import annotations

import keras
import numpy as np

from mnist_models.spec import (
    HIDDEN_LAYERS,
    HIDDEN_UNITS,
    IMAGE_SHAPE,
    LEARNING_RATE,
    NUM_CLASSES,
    POLICIES,
)


def build_mlp(
    policy: str = "float32",
    *,
    learning_rate: float = LEARNING_RATE,
    jit_compile: bool | str = False,
    steps_per_execution: int = 1,
) -> keras.Model:
    """Flatten → Dense(128, relu) → Dense(128, relu) → Dense(10, softmax), compiled with Adam.

    Under a mixed policy the hidden layers compute in the low precision while every variable stays
    float32; the output layer runs in float32 so the softmax (and the loss) keep full precision.
    Loss scaling for mixed_float16 is Keras' own LossScaleOptimizer.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown dtype policy {policy!r}; choose from {POLICIES}")
    model = keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            keras.layers.Flatten(),
            *(
                keras.layers.Dense(HIDDEN_UNITS, activation="relu", dtype=policy)
                for _ in range(HIDDEN_LAYERS)
            ),
            keras.layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
        ]
    )
    optimizer: keras.optimizers.Optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    if policy == "mixed_float16":
        # Per-layer policies leave the model's own policy at float32, so compile() would not wrap.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def scale_images(x: np.ndarray) -> np.ndarray:
    """x / 255.0 as the reference does, kept float32 (what Keras would cast float64 input to).

    For uint8 pixels (MNIST's) dividing in float32 gives the same bits as dividing in float64 and
    rounding, for every one of the 256 values (a test checks), without the float64 temporary (8 bytes
    a pixel) that every job would pay for.
    """
    if x.dtype == np.uint8:
        return np.divide(x, np.float32(255.0), dtype=np.float32)
    return (x / 255.0).astype(np.float32)


def parameter_count(model: keras.Model) -> int:
    """Number of scalars in the model's variables."""
    return int(sum(int(np.prod(v.shape)) for v in model.weights))


def variable_bytes(variables: list) -> int:
    """Bytes held by a list of Keras variables, at each variable's own dtype."""
    return int(sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables))


def parameter_bytes(model: keras.Model) -> int:
    """Bytes of the model's variables; float32 even under mixed policies (4 B a parameter)."""
    return variable_bytes(model.weights)


def format_kib(num_bytes: int) -> str:
    """Keras' summary style: 473128 → '462.04 KB' (KB = 1024 B)."""
    return f"{num_bytes / 1024:.2f} KB"


def layer_table(model: keras.Model) -> list[dict[str, object]]:
    """One row per layer: name, class, output shape, parameter count, compute/variable dtype."""
    rows = []
    for layer in model.layers:
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output_shape": str(tuple(layer.output.shape)),
                "params": int(sum(int(np.prod(w.shape)) for w in layer.weights)),
                "compute_dtype": layer.compute_dtype,
                "variable_dtype": layer.variable_dtype,
            }
        )
    return rows
