"""Hooks the runner's child processes call (RunContext.hook = 'tests.hooks:NAME').

They go through the public API to make a variant small, diverge, fail or hang; no product flag
exists for any of this.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from mnist_models.data import load_mnist
from tests.conftest import CACHE


def small() -> dict[str, Any]:
    """Train on 2,000 real images, validate on 500."""
    return {"data": load_mnist(cache_path=CACHE, sources=("cache",)).head(2000, 500)}


def diverge() -> dict[str, Any]:
    """A step size no model survives, set once training begins: the loss goes non-finite."""
    import keras  # in the worker, after it chose the backend

    class HugeStep(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.model.optimizer.learning_rate.assign(1e30)

    return small() | {"callbacks": [HugeStep()]}


def fail() -> dict[str, Any]:
    raise RuntimeError("injected failure (test)")


def fail_bs200() -> dict[str, Any]:
    """Fail the batch-200 job only (the worker's argv[1] is its job file), train the others small."""
    job = json.loads(Path(sys.argv[1]).read_text())
    if job["variant"]["batch_size"] == 200:
        fail()
    return small()


def hang() -> dict[str, Any]:
    """Hang; first leave `hanging-PID` beside the job file, so a test knows this point was reached."""
    Path(sys.argv[1]).with_name(f"hanging-{os.getpid()}").touch()
    time.sleep(3600)
    return {}
