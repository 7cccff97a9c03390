"""The reference model's facts as plain data (no Keras): shapes, dtype policies, data sizes.

``mnist_models.mlp`` builds the model from these; code that only needs the facts (costs, the
variant checks) reads them here without importing Keras.
"""

from __future__ import annotations

import itertools
import math

IMAGE_SHAPE = (28, 28)
INPUT_FEATURES = math.prod(IMAGE_SHAPE)
HIDDEN_UNITS = 128
HIDDEN_LAYERS = 2
NUM_CLASSES = 10
LEARNING_RATE = 0.01
TRAIN_IMAGES = 60000
TEST_IMAGES = 10000

# (fan_in, fan_out) of each Dense layer: 784→128→128→10.
_WIDTHS = (INPUT_FEATURES, *(HIDDEN_UNITS,) * HIDDEN_LAYERS, NUM_CLASSES)
DENSE_SHAPES = tuple(itertools.pairwise(_WIDTHS))

# Keras dtype policies, the one list every other module takes its precisions from.
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def compute_dtype(policy: str) -> str:
    """The dtype a policy's hidden layers compute in: 'mixed_float16' → 'float16'."""
    if policy not in POLICIES:
        raise ValueError(f"unknown dtype policy {policy!r}; choose from {POLICIES}")
    return policy.removeprefix("mixed_")
