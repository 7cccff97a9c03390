"""Keras callback that times every training step and every validation pass."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import keras


@dataclass
class EpochClock:
    """Raw timings of one epoch, in seconds."""

    step_s: list[float] = field(default_factory=list)
    train_s: float = 0.0
    val_s: float = 0.0


class StepClock(keras.callbacks.Callback):
    """Per-step wall time, from one batch end to the next.

    Defining on_train_batch_end makes Keras dispatch callbacks synchronously and turn the step's
    logs into Python floats first, so on a GPU the clock stops only after the device finished.
    Each interval covers everything the loop does per step (data, step, other callbacks).
    """

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[EpochClock] = []
        self._last = 0.0
        self._epoch_start = 0.0
        self._val_start: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs.append(EpochClock())
        self._epoch_start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        current = self.epochs[-1]
        current.step_s.append(now - self._last)
        current.train_s = now - self._epoch_start
        self._last = now

    def exclude(self, seconds: float) -> None:
        """Leave `seconds` (a wait for the machine, ``bench.measure.baton``) out of the clock:
        out of the next step's interval and of this epoch's training time."""
        self._last += seconds
        self._epoch_start += seconds

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._val_start = time.perf_counter()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._val_start is not None and self.epochs:
            self.epochs[-1].val_s += time.perf_counter() - self._val_start
        self._val_start = None
