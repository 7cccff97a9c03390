"""This machine's dense-matmul peak, measured with TensorFlow in the same run as the variants.

One probe runs a short trial per (device, dtype, size); the runner probes before, between and after
the variants, and reports take the best trial as the peak and the trials' spread as a sign of load.
"""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf

MATMUL_SIZES = (1024, 2048)
MATMUL_N = MATMUL_SIZES[0]
BUDGET_S = 0.25  # per trial: short, so trials spread over the run cost little


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
    """GPUs TensorFlow sees and one matmul trial per device, dtype and size (None if unsupported)."""
    gpus = tf.config.list_physical_devices("GPU")
    devices = {"cpu": "/CPU:0"} | ({"gpu": "/GPU:0"} if gpus else {})
    trials: list[dict[str, Any]] = []
    for name, device in devices.items() if measure_peak else ():
        for dtype in dtypes:
            for n in MATMUL_SIZES:
                try:
                    flops: float | None = matmul_flops_per_s(device, dtype, n)
                except (tf.errors.OpError, TypeError, ValueError):
                    flops = None
                trials.append({"device": name, "dtype": dtype, "n": n, "flops_per_s": flops})
    peak: dict[str, dict[str, float | None]] = {}
    for t in trials:  # this probe's best per device and dtype (None where no trial ran)
        best = peak.setdefault(str(t["device"]), {})
        flops = t["flops_per_s"]
        previous = best.get(str(t["dtype"]))
        best[str(t["dtype"])] = max(flops, previous or 0.0) if flops is not None else previous
    gpu_names = [
        tf.config.experimental.get_device_details(d).get("device_name", d.name) for d in gpus
    ]
    return {
        "gpus": gpu_names,
        "matmul_n": MATMUL_N,
        "matmul_sizes": list(MATMUL_SIZES),
        "trials": trials,
        "peak_flops_per_s": peak,
        "tensorflow": tf.__version__,
        "built_with_cuda": tf.test.is_built_with_cuda(),
    }
