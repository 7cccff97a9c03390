"""This machine's dense-matmul peak, measured in the same run as the variants.

One machine probe (``machine_probe``; records of kind ``probe``, not the A/B gate's probe process) runs a short trial per (device, dtype, size); the runner probes before, between and after
the variants, and reports take the best trial as the peak and the trials' spread as a sign of load.
The trials run on TensorFlow where it is installed (as every report before backends did), else on
torch; the probe says which. Both wait for the device before stopping the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.measure.gpus import visible_gpus

MATMUL_SIZES = (1024, 2048)
MATMUL_N = MATMUL_SIZES[0]
BUDGET_S = 0.25  # per trial: short, so trials spread over the run cost little


def _best_time(run: Callable[[], object], budget_s: float) -> float:
    """Fastest of at least 3 calls of `run` (each of which waits for its result) within budget_s."""
    run()  # trace and warm up
    best = float("inf")
    deadline = time.perf_counter() + budget_s
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
        runs += 1
    return best


def _tensorflow_trial(device: str, dtype: str, n: int, budget_s: float) -> float | None:
    import tensorflow as tf

    try:
        with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
            a = tf.cast(tf.random.uniform((n, n), dtype=tf.float32), dtype)
            b = tf.identity(a)
            matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
            # .numpy() waits for the device
            return 2 * n**3 / _best_time(lambda: matmul(a, b).numpy(), budget_s)
    except (tf.errors.OpError, TypeError, ValueError):
        return None


def _torch_trial(device: str, dtype: str, n: int, budget_s: float) -> float | None:
    import torch

    try:
        a = torch.rand((n, n), device="cuda" if device == "gpu" else "cpu").to(
            getattr(torch, dtype)
        )
        b = a.clone()
        # .item() copies the result to the host, which waits for the device
        return 2 * n**3 / _best_time(lambda: (a @ b).sum().item(), budget_s)
    except (RuntimeError, TypeError):  # e.g. a dtype the CPU kernels lack
        return None


TRIALS = {"tensorflow": _tensorflow_trial, "torch": _torch_trial}


def machine_probe(
    dtypes: tuple[str, ...] = ("float32", "bfloat16", "float16"), measure_peak: bool = True
) -> dict[str, Any]:
    """GPUs each backend sees and one matmul trial per device, dtype and size (None if unsupported)."""
    by_backend = visible_gpus()
    framework = next((f for f in TRIALS if f in by_backend), None)  # by_backend: installed ones
    trial = TRIALS[framework] if framework else None
    trial_gpus = by_backend.get(framework or "", [])
    devices = ("cpu", "gpu") if trial_gpus else ("cpu",)
    trials: list[dict[str, Any]] = []
    for device in devices if measure_peak and trial else ():
        for dtype in dtypes:
            for n in MATMUL_SIZES:
                flops = trial(device, dtype, n, BUDGET_S)  # type: ignore[misc]
                trials.append({"device": device, "dtype": dtype, "n": n, "flops_per_s": flops})
    peak: dict[str, dict[str, float | None]] = {}
    for t in trials:  # this probe's best per device and dtype (None where no trial ran)
        best = peak.setdefault(str(t["device"]), {})
        flops = t["flops_per_s"]
        previous = best.get(str(t["dtype"]))
        best[str(t["dtype"])] = max(flops, previous or 0.0) if flops is not None else previous
    tf_version, cuda = None, None
    if "tensorflow" in by_backend:
        import tensorflow as tf

        tf_version, cuda = tf.__version__, tf.test.is_built_with_cuda()
    return {
        "gpus": by_backend.get("tensorflow", []),
        "gpus_by_backend": by_backend,
        "framework": framework,
        "matmul_n": MATMUL_N,
        "matmul_sizes": list(MATMUL_SIZES),
        "trials": trials,
        "peak_flops_per_s": peak,
        "tensorflow": tf_version,
        "built_with_cuda": cuda,
    }
