"""Hooks that make a real worker die as jobs die in the wild (RunContext.hook = 'tests.fault_hooks:NAME')."""

from __future__ import annotations

import os
import signal
from typing import Any

import keras

from tests.hooks import small


def sigkill_mid_training() -> dict[str, Any]:
    """Train small, and SIGKILL the worker after a few steps, as the out-of-memory killer would."""
    return small() | {"callbacks": [SigkillAfter(5)]}


class SigkillAfter(keras.callbacks.Callback):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if batch + 1 >= self.steps:
            os.kill(os.getpid(), signal.SIGKILL)
