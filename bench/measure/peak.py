"""This machine's dense-matmul peak, measured with TensorFlow in the same run as the variants."""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf

MATMUL_N = 1024
BUDGET_S = 0.5


def matmul_flops_per_s(
    device: str, dtype: str, n: int = MATMUL_N, budget_s: float = BUDGET_S
) -> float:
    """Best achieved FLOP/s of an n×n @ n×n matmul (2n³ FLOPs) over a short timed loop."""
    with tf.device(device):
        a = tf.random.uniform((n, n), dtype=tf.float32)
        a = tf.cast(a, dtype)
        b = tf.identity(a)
        matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
        matmul(a, b).numpy()  # trace and warm up; .numpy() waits for the device
        best = float("inf")
        deadline = time.perf_counter() + budget_s
        runs = 0
        while runs < 3 or time.perf_counter() < deadline:
            start = time.perf_counter()
            matmul(a, b).numpy()
            best = min(best, time.perf_counter() - start)
            runs += 1
    return 2 * n**3 / best


def probe(
    dtypes: tuple[str, ...] = ("float32", "bfloat16", "float16"), measure_peak: bool = True
) -> dict[str, Any]:
    """GPUs TensorFlow sees and the matmul peak per device and dtype (None where unsupported)."""
    gpus = tf.config.list_physical_devices("GPU")
    devices = {"cpu": "/CPU:0"} | ({"gpu": "/GPU:0"} if gpus else {})
    peak: dict[str, dict[str, float | None]] = {}
    for name, device in devices.items() if measure_peak else ():
        peak[name] = {}
        for dtype in dtypes:
            try:
                peak[name][dtype] = matmul_flops_per_s(device, dtype)
            except (tf.errors.OpError, TypeError, ValueError):
                peak[name][dtype] = None
    gpu_names = [
        tf.config.experimental.get_device_details(d).get("device_name", d.name) for d in gpus
    ]
    return {
        "gpus": gpu_names,
        "matmul_n": MATMUL_N,
        "peak_flops_per_s": peak,
        "tensorflow": tf.__version__,
        "built_with_cuda": tf.test.is_built_with_cuda(),
    }
