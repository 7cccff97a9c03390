"""Run in a fresh interpreter by tests/test_backends.py: `python -m tests.backend_check BACKEND`.

KERAS_BACKEND is process-global and read when Keras is first imported, so each backend gets its own
process. For every precision policy this builds the reference model through mnist_models, trains it
for a few steps with jit_compile="auto" under the harness's StepClock, and prints one JSON line: the
model's facts, where its variables live, and the types of the logs a callback sees at
on_train_batch_end. Run with a GPU visible, it is the GPU check of that backend.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

STEPS = 8
BATCH = 32


def main(backend: str) -> dict[str, Any]:
    from bench.run.worker import choose_backend

    choose_backend(backend)  # as every job's process does
    import keras
    import numpy as np

    from bench.measure.backend import variable_device
    from bench.measure.clock import StepClock
    from mnist_models import mlp
    from mnist_models.spec import POLICIES

    class LogTypes(keras.callbacks.Callback):
        """The type of every value in the logs at on_train_batch_end."""

        def __init__(self) -> None:
            super().__init__()
            self.types: set[str] = set()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.types |= {type(v).__name__ for v in (logs or {}).values()}

    rng = np.random.default_rng(0)
    x = mlp.scale_images(rng.integers(0, 256, (STEPS * BATCH, 28, 28), dtype=np.uint8))
    y = rng.integers(0, 10, STEPS * BATCH)
    out: dict[str, Any] = {"backend": keras.backend.backend(), "policies": {}}
    for policy in POLICIES:
        keras.utils.set_random_seed(0)
        model = mlp.build_mlp(policy, jit_compile="auto")
        clock, seen = StepClock(), LogTypes()
        history = model.fit(x, y, batch_size=BATCH, epochs=1, callbacks=[clock, seen], verbose=0)
        out["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
        out["policies"][policy] = {
            "params": mlp.parameter_count(model),
            "param_bytes": mlp.parameter_bytes(model),
            "param_kib": mlp.format_kib(mlp.parameter_bytes(model)),
            "optimizer_bytes": mlp.variable_bytes(list(model.optimizer.variables)),
            "optimizer": type(model.optimizer).__name__,
            "compute_dtypes": [layer.compute_dtype for layer in model.layers],
            "variable_dtypes": sorted({str(w.dtype) for w in model.weights}),
            "jit_resolved": bool(model.jit_compile),
            "variable_device": variable_device(model),
            "log_types": sorted(seen.types),
            "steps_timed": len(clock.epochs[0].step_s),
            "loss_finite": math.isfinite(history.history["loss"][0]),
        }
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
