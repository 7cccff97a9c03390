"""Analytic costs of the reference MLP: FLOPs and activation memory, from the layer shapes."""

from __future__ import annotations

from mnist_models.spec import DENSE_SHAPES, DTYPE_BYTES, INPUT_FEATURES, compute_dtype


def train_step_flops(batch_size: int) -> int:
    """Matmul FLOPs of one training step (multiply and add counted as 2).

    Forward: 2·B·in·out per layer. Backward: the weight gradient costs the same again for every
    layer, and the input gradient for every layer but the first (nothing consumes the image's
    gradient). Bias adds, activations and the Adam update are O(params), under 1% here, and left out.
    """
    forward = sum(2 * batch_size * i * o for i, o in DENSE_SHAPES)
    weight_grads = forward
    input_grads = sum(2 * batch_size * i * o for i, o in DENSE_SHAPES[1:])
    return forward + weight_grads + input_grads


def activation_bytes(batch_size: int, precision: str) -> int:
    """Estimate of the activations kept for the backward pass of one batch.

    The float32 input, plus each hidden Dense layer's pre- and post-activation output at the compute
    dtype; the output layer computes in float32 under every policy (softmax kept in float32).
    """
    hidden = DTYPE_BYTES[compute_dtype(precision)]
    total = INPUT_FEATURES * DTYPE_BYTES["float32"]
    for _, units in DENSE_SHAPES[:-1]:
        total += 2 * units * hidden
    total += 2 * DENSE_SHAPES[-1][1] * DTYPE_BYTES["float32"]
    return batch_size * total
