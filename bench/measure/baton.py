"""The Baton callback: a training process hands the machine back at block boundaries.

The process side of the interleaving engine (``bench.run.turns``): ``wait(where)`` blocks until the
driver says go. Blocks end after a number of steps (the A/B gate's probes: ``every``) or after a
time (the matrix's arms: ``block_s``, so a batch-2048 block costs about what a batch-32 block does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras

from bench.measure import cputime
from bench.measure.clock import StepClock


class Baton(keras.callbacks.Callback):
    """Wait for the driver at train begin, at the end of every block of steps, and at train end.

    ``wait(where)`` may return the next block's seconds (the driver's ``go SECONDS``); blocks that
    count steps (`every`) ignore it.

    Put it after the clocks in the callback list: a mid-training pause then falls into the *next*
    step's interval. Its length is in ``pauses`` ([steps so far, seconds]); with a `clock`, the
    clock leaves it out of that interval and of the epoch's training time too (``StepClock.exclude``).
    The step after a pause is still the block's first, with whatever the other processes did to the
    caches: readers leave it out of step statistics. Each block's steps and its wall, process CPU
    and machine steal seconds are in ``blocks`` (``bench.measure.cputime``), read inside the wait
    so the clock leaves the reading out too.

    ``trained_s`` is fit's own time from the end of the train-begin wait to the start of the
    train-end wait, mid-training waits left out: the epochs (steps, validation, their callbacks).
    What fit does before its first turn (its dataset and train function, side by side with the
    other arms' start-ups) and after its last wait (Keras's end of fit, in the turn of the final
    evaluate) fall outside it.
    """

    def __init__(
        self,
        wait: Callable[[str], float | None],
        *,
        every: int | None = None,
        block_s: float | None = None,
        clock: StepClock | None = None,
    ) -> None:
        super().__init__()
        if (every is None) == (block_s is None):
            raise ValueError(
                "a baton ends blocks after `every` steps or after `block_s`, one of them"
            )
        if every is not None and every < 1:
            raise ValueError(f"interleave every {every} steps: need at least 1")
        if block_s is not None and not block_s > 0:
            raise ValueError(f"interleave blocks of {block_s} s: need a time > 0")
        self.wait, self.every, self.block_s, self.clock = wait, every, block_s, clock
        self._next_s = block_s  # a driver may set one block's length when it says go
        self.steps = 0
        self.pauses: list[list[float]] = []
        self.waited_s = 0.0  # every wait, train begin and end included
        self.trained_s = 0.0  # from train begin's go to the train-end wait, pauses left out
        self._block_start = 0.0
        self._began = 0.0
        self.blocks: list[dict[str, Any]] = []
        self._opened: tuple[cputime.Reading, int] | None = None  # the running block's start

    def _wait(self, where: str) -> float:
        start = time.perf_counter()
        if self._opened is not None:  # a block of training ends here
            reading, steps = self._opened
            self.blocks.append(cputime.block(reading, cputime.read(), self.steps - steps))
        asked = self.wait(where)
        self._next_s = asked if asked is not None else self.block_s
        self._opened = (cputime.read(), self.steps) if where != "train_end" else None
        self._block_start = time.perf_counter()
        self.waited_s += self._block_start - start
        return self._block_start - start

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._wait("train_begin")
        self._began = self._block_start

    def _block_over(self, now: float) -> bool:
        if self.every is not None:
            return self.steps % self.every == 0
        assert self._next_s is not None
        return now - self._block_start >= self._next_s

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps += 1
        if not self._block_over(time.perf_counter()):
            return
        paused = self._wait("step")
        self.pauses.append([self.steps, round(paused, 7)])
        if self.clock is not None:
            self.clock.exclude(paused)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        paused_s = sum(seconds for _, seconds in self.pauses)
        self.trained_s = time.perf_counter() - self._began - paused_s
        self._wait("train_end")
